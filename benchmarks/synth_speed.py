"""Seconds of audio made per second of wall time, per synthesizer, over all CPU cores.

Also prints audio seconds per CPU second (the synthesizer processes' and workers' user +
system time), which says what more free cores would give on a shared machine.

    PYTHONPATH=. python benchmarks/synth_speed.py --num 200 [--text FILE] [--jobs N]

Each engine speaks the same sentences with all of its voices into a fresh temporary
folder (nothing resumed), using `asr.corpora.synth.synthesize_corpus` as `asr data synth` does.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from asr.corpora.synth import VOICES, SynthConfig, read_sentences, synthesize_corpus

_SAMPLE_TEXT = (
    "The time traveller, for so it will be convenient to speak of him, was expounding a "
    "recondite matter to us. His grey eyes shone and twinkled, and his usually pale face "
    "was flushed and animated. The fire burned brightly, and the soft radiance of the "
    "incandescent lights in the lilies of silver caught the bubbles that flashed and passed "
    "in our glasses. Our chairs, being his patents, embraced and caressed us rather than "
    "submitted to be sat upon, and there was that luxurious after-dinner atmosphere when "
    "thought roams gracefully free of the trammels of precision."
)


def sentences(text_file: str | None, num: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(text_file) if text_file else Path(tmp) / "sample.txt"
        if not text_file:
            path.write_text(_SAMPLE_TEXT)
        found, _ = read_sentences([path], min_words=3, max_words=25)
    return [found[i % len(found)] + ("" if i < len(found) else f" number {i}") for i in range(num)]


def _children_cpu() -> float:
    """User + system seconds of finished child processes (pool workers and the engines)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--num", type=int, default=200, help="sentences per engine")
    parser.add_argument("--text", default=None, help="text file (default: a built-in paragraph)")
    parser.add_argument("--jobs", type=int, default=0, help="workers (0: one per core)")
    parser.add_argument("--engines", nargs="+", default=["espeak-ng", "flite", "festival"])
    args = parser.parse_args()
    items = sentences(args.text, args.num)
    jobs = args.jobs or os.cpu_count() or 1
    print(f"{len(items)} sentences per engine, {jobs} workers on {os.cpu_count()} cores")
    for engine in args.engines:
        voices = tuple(v for v in VOICES if v.startswith(engine + ":"))
        with tempfile.TemporaryDirectory() as out:
            cpu_before = _children_cpu()
            start = time.monotonic()
            result = synthesize_corpus(items, out, SynthConfig(voices=voices, jobs=jobs))
            wall = time.monotonic() - start
            cpu = _children_cpu() - cpu_before
        audio = sum(u.duration for u in result.utterances)
        print(
            f"{engine:10s} {len(voices)} voices  {len(result.utterances)} utts  "
            f"{audio:8.1f} s audio in {wall:6.1f} s wall  = {audio / wall:6.1f} s/s  "
            f"({audio / cpu:6.1f} s per CPU s; {len(result.skipped)} skipped)"
        )


if __name__ == "__main__":
    main()
