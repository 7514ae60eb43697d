"""Run pyctcdecode on cached log-probs; called by decode_speed.py inside pyctcdecode's venv.

    /work/venvs/pyctcdecode/bin/python benchmarks/pyctcdecode_runner.py JOB.json

Prints one JSON line: [{"beam": N, "seconds": S, "hyps": [...]}, ...].
"""

import json
import sys
import time

import numpy as np
from pyctcdecode import build_ctcdecoder


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    arrays = np.load(job["log_probs"])
    log_probs = [arrays[f"u{i}"] for i in range(len(arrays.files))]
    unigrams = None
    if job["lexicon"]:
        with open(job["lexicon"], encoding="utf-8") as f:
            unigrams = [line.split()[0] for line in f]
    decoder = build_ctcdecoder(
        job["labels"], job["lm"], unigrams=unigrams, alpha=job["alpha"], beta=job["beta"]
    )
    decoder.decode(log_probs[0], beam_width=job["beam_sizes"][0])  # load the LM once
    rows = []
    for beam in job["beam_sizes"]:
        start = time.perf_counter()
        hyps = [" ".join(decoder.decode(x, beam_width=beam).split()) for x in log_probs]
        rows.append({"beam": beam, "seconds": time.perf_counter() - start, "hyps": hyps})
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
