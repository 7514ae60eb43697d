"""Decode a manifest with pocketsphinx's bundled en-us model; print one JSON object.

Runs inside pocketsphinx's own virtual environment (it needs only pocketsphinx, soundfile
and numpy), called by benchmarks/compare_pocketsphinx.py:
    /work/venvs/pocketsphinx/bin/python benchmarks/pocketsphinx_runner.py MANIFEST
"""

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from pocketsphinx import Decoder


def read_pcm16(path: str) -> bytes:
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    if rate != 16_000:
        raise SystemExit(f"{path}: {rate} Hz; this runner expects 16 kHz audio")
    mono = samples.mean(axis=1)
    return (np.clip(mono, -1, 1) * 32767).astype("<i2").tobytes()


def main() -> None:
    manifest = Path(sys.argv[1])
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    start = time.perf_counter()
    decoder = Decoder(samprate=16_000)
    load_seconds = time.perf_counter() - start
    hyps, audio_seconds, decode_seconds = [], 0.0, 0.0
    for entry in entries:
        path = Path(entry["audio_filepath"])
        path = path if path.is_absolute() else manifest.parent / path
        start = time.perf_counter()
        decoder.start_utt()
        decoder.process_raw(read_pcm16(str(path)), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        decode_seconds += time.perf_counter() - start
        hyps.append(hyp.hypstr if hyp is not None else "")
        audio_seconds += entry["duration"]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "hyps": hyps,
                "audio_seconds": audio_seconds,
                "decode_seconds": decode_seconds,
                "load_seconds": load_seconds,
                "peak_rss_mib": peak_kib / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
