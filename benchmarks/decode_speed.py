"""Beam search speed and accuracy: asr (flashlight-text) vs pyctcdecode.

Both decoders search the same cached acoustic log-probs with the same KenLM LM, at several
beam sizes; WER and utterances per second are printed side by side, plus the end-to-end
real-time factor of asr (acoustic model + beam search).

pyctcdecode pins numpy<2, so it runs in its own virtual environment, as a subprocess:

    python3 -m venv /work/venvs/pyctcdecode
    /work/venvs/pyctcdecode/bin/pip install pyctcdecode "numpy<2" kenlm

    python benchmarks/decode_speed.py --model exp/librispeech \\
        --manifest exp/mini/dev.jsonl --lm exp/lm_gutenberg/lm.bin \\
        --beam-sizes 8 16 32 64 --lm-weight 1.0 --word-score 1.0 \\
        --pyctcdecode-python /work/venvs/pyctcdecode/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from asr.decode import DecodingOptions
from asr.inference.model_folder import lexicon_for
from asr.inference.recognizer import load_model
from asr.metrics import error_counts
from asr.tune import cache_log_probs, decode_cached

RUNNER = Path(__file__).with_name("pyctcdecode_runner.py")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="checkpoint or experiment folder")
    p.add_argument("--manifest", required=True, help="JSON-lines manifest to decode")
    p.add_argument("--lm", required=True, help="KenLM binary or ARPA (lexicon.txt beside it)")
    p.add_argument("--beam-sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--lm-weight", type=float, default=1.0, help="LM weight, both decoders")
    p.add_argument("--word-score", type=float, default=1.0, help="word score, both decoders")
    p.add_argument("--workers", type=int, default=1, help="asr decode workers")
    p.add_argument("--pyctcdecode-python", default="/work/venvs/pyctcdecode/bin/python")
    return p.parse_args()


def run_asr(cache, vocab, base: DecodingOptions, beam_sizes) -> list[dict]:
    rows = []
    decode_cached(cache, vocab, replace(base, beam_size=beam_sizes[0]))  # load the LM once
    for beam in beam_sizes:
        options = replace(base, beam_size=beam)
        start = time.perf_counter()
        hyps = decode_cached(cache, vocab, options)
        seconds = time.perf_counter() - start
        wer = error_counts(cache.refs, hyps, "word").rate
        rows.append({"beam": beam, "wer": wer, "seconds": seconds})
    return rows


def run_pyctcdecode(cache, vocab, args, lexicon: str | None) -> list[dict] | None:
    python = Path(args.pyctcdecode_python)
    if not python.is_file():
        print(f"pyctcdecode venv missing ({python}); see this script's docstring", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {f"u{i}": m for i, m in enumerate(cache.log_probs)}
        np.savez(Path(tmp) / "log_probs.npz", **arrays)
        job = {
            "log_probs": str(Path(tmp) / "log_probs.npz"),
            "labels": ["" if i == vocab.blank_id else t for i, t in enumerate(vocab.tokens)],
            "lm": args.lm if not args.lm.endswith(".bin") else args.lm.replace(".bin", ".arpa"),
            "lexicon": lexicon,
            "alpha": args.lm_weight,
            "beta": args.word_score,
            "beam_sizes": args.beam_sizes,
        }
        (Path(tmp) / "job.json").write_text(json.dumps(job))
        done = subprocess.run(
            [str(python), str(RUNNER), str(Path(tmp) / "job.json")], capture_output=True, text=True
        )
    if done.returncode != 0:
        print(f"pyctcdecode failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    rows = json.loads(done.stdout.splitlines()[-1])
    for row in rows:
        row["wer"] = error_counts(cache.refs, row.pop("hyps"), "word").rate
    return rows


def main() -> None:
    args = parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    recognizer = load_model(args.model, "cpu")
    start = time.perf_counter()
    cache = cache_log_probs(recognizer, args.manifest)
    acoustic_seconds = time.perf_counter() - start
    lexicon = lexicon_for(args.lm)
    base = DecodingOptions(
        decoder="beam",
        lm_path=args.lm,
        lexicon_path=lexicon,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        num_workers=args.workers,
    )
    n = len(cache.refs)
    greedy = decode_cached(cache, recognizer.vocab, DecodingOptions())
    print(f"{n} utterances, {cache.audio_seconds / 60:.1f} min of audio; lexicon: {lexicon}")
    speed = cache.audio_seconds / acoustic_seconds
    print(f"acoustic model: {acoustic_seconds:.1f} s ({speed:.0f}x real time)")
    print(f"greedy WER {100 * error_counts(cache.refs, greedy, 'word').rate:.2f}%")
    ours = run_asr(cache, recognizer.vocab, base, args.beam_sizes)
    theirs = run_pyctcdecode(cache, recognizer.vocab, args, lexicon)
    print(f"{'beam':>5} | {'asr WER %':>9} {'utt/s':>8} {'e2e xRT':>8} |", end="")
    print(f" {'pyctcdecode WER %':>17} {'utt/s':>8} | speed-up")
    for i, row in enumerate(ours):
        e2e = cache.audio_seconds / (acoustic_seconds + row["seconds"])
        line = f"{row['beam']:5d} | {100 * row['wer']:9.2f} {n / row['seconds']:8.1f} {e2e:8.1f} |"
        if theirs:
            other = theirs[i]
            line += f" {100 * other['wer']:17.2f} {n / other['seconds']:8.1f} |"
            line += f" {other['seconds'] / row['seconds']:7.1f}x"
        print(line)


if __name__ == "__main__":
    main()
