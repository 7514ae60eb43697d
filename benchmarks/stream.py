"""Streaming against offline with the same model folder: dev WER, latency, concurrency.

    python benchmarks/stream.py --manifest data/manifests/mini/dev.jsonl \
        --model data/models/en-stream --latency-utterances 12 --streams 1 2 4 8

WER: every utterance streamed (blocks of `--block-seconds`, as fast as it decodes; finals
joined) and transcribed offline (`Recognizer.transcribe`), scored against the references.
Latency, one stream at real-time pace (blocks sent on the clock): for each block, the time
from sending its last sample to the first event that has decoded past it (partial
latency); and from the end of each utterance's audio, followed by 1 s of silence sent on
the clock, to its final result (endpoint latency), and from `{"eof": 1}` (`finish`) to the
final result. Concurrency: N streams at once at real-time pace, each in its own thread on
its own utterances; p95 partial latency for each N. The target: p95 at most chunk +
look-ahead + 150 ms.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from asr.audio import load_audio
from asr.inference.recognizer import load_model
from asr.manifest import read_manifest
from asr.metrics import error_counts
from asr.text import normalize_text


def streamed_text(recognizer, wave: np.ndarray, block: int) -> str:
    stream = recognizer.stream()
    events = []
    for i in range(0, len(wave), block):
        events += stream.accept(wave[i : i + block])
    events += stream.finish()
    return " ".join(e.raw_text for e in events if e.kind == "final" and e.raw_text)


def wer(refs: list[str], hyps: list[str]) -> float:
    return error_counts([normalize_text(r) for r in refs], [normalize_text(h) for h in hyps]).rate


def realtime_run(recognizer, waves: list[np.ndarray], block: int, out: dict) -> None:
    """Stream `waves` one after another on the clock; latencies into `out`'s lists."""
    rate = recognizer.sample_rate
    frame = recognizer.frame_seconds
    silence = np.zeros(rate, np.float32)
    for wave in waves:
        stream = recognizer.stream()
        audio = np.concatenate([wave, silence])
        began = time.monotonic()
        sent_at: list[tuple[int, float]] = []  # (samples sent, when)
        final_at = None
        for i in range(0, len(audio), block):
            piece = audio[i : i + block]
            due = began + (i + len(piece)) / rate
            time.sleep(max(0.0, due - time.monotonic()))
            sent = time.monotonic()
            sent_at.append((i + len(piece), sent))
            events = stream.accept(piece)
            now = time.monotonic()
            decoded = stream.decoder.frames * frame * rate  # samples decoded so far
            while sent_at and sent_at[0][0] <= decoded:
                out["partial"].append(now - sent_at.pop(0)[1])
            past_speech = final_at is None and i + len(piece) > len(wave)
            if past_speech and any(e.kind == "final" for e in events):
                final_at = now
        speech_end = began + len(wave) / rate
        if final_at is not None:
            out["endpoint"].append(final_at - speech_end)
        start = time.monotonic()
        stream.finish()
        out["eof"].append(time.monotonic() - start)


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    p50, p95 = np.percentile(values, [50, 95])
    return f"p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms ({len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--block-seconds", type=float, default=0.1)
    parser.add_argument("--latency-utterances", type=int, default=12)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--skip-wer", action="store_true")
    args = parser.parse_args()

    recognizer = load_model(args.model, "cpu", args.runtime)
    utterances = read_manifest(args.manifest)
    block = int(args.block_seconds * recognizer.sample_rate)
    window = recognizer.runner.stream_window
    budget = (window.chunk + window.right) * recognizer.frame_seconds + 0.150
    print(
        f"model {args.model}: chunk {window.chunk * recognizer.frame_seconds:.2f} s, "
        f"look-ahead {window.right * recognizer.frame_seconds:.2f} s, "
        f"latency target p95 <= {1000 * budget:.0f} ms; blocks of {args.block_seconds} s"
    )
    waves = [load_audio(u.audio_filepath) for u in utterances]
    refs = [u.text for u in utterances]
    if not args.skip_wer:
        start = time.monotonic()
        offline = [t.raw_text for t in recognizer.transcribe(waves)]  # the spoken words
        offline_s = time.monotonic() - start
        start = time.monotonic()
        streamed = [streamed_text(recognizer, w, block) for w in waves]
        streamed_s = time.monotonic() - start
        audio = sum(len(w) for w in waves) / recognizer.sample_rate
        a, b = wer(refs, offline), wer(refs, streamed)
        print(f"WER offline  {100 * a:.2f}%  ({audio / offline_s:.1f}x real time)")
        print(
            f"WER streamed {100 * b:.2f}%  ({audio / streamed_s:.1f}x real time); "
            f"relative {100 * (b - a) / a:+.1f}%"
        )
    subset = waves[: args.latency_utterances]
    for count in args.streams:
        results = [{"partial": [], "endpoint": [], "eof": []} for _ in range(count)]
        shards = [subset[i::count] or subset[:1] for i in range(count)]
        threads = [
            threading.Thread(target=realtime_run, args=(recognizer, shard, block, out))
            for shard, out in zip(shards, results, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        merged = {k: [v for r in results for v in r[k]] for k in results[0]}
        p95 = np.percentile(merged["partial"], 95)
        verdict = "meets" if p95 <= budget else "misses"
        print(
            f"{count} stream(s): partial {percentiles(merged['partial'])} ({verdict} the "
            f"target); end of speech -> final {percentiles(merged['endpoint'])}; "
            f"eof -> final {percentiles(merged['eof'])}"
        )


if __name__ == "__main__":
    main()
