"""The G2P model against espeak-ng on CMUdict's held-out test words (issue 32, direction 1).

    python benchmarks/g2p.py [--model data/models/g2p-en] [--limit N]

Both spell the same words (asr/g2p/data.py's committed rule: every 20th of the sorted
words, never trained or chosen on); their phones are scored against CMUdict's first
pronunciation without stress: phone error rate (edit distance over reference phones), the
share of words with any phone wrong, and milliseconds per word. espeak-ng's IPA goes
through the project's IPA -> ARPAbet map (asr/pronounce.py), as training uses it.
"""

from __future__ import annotations

import argparse
import json
import time

from asr.g2p import G2PRuntime, data
from asr.g2p.train import phone_error_rate
from asr.pronounce import espeak_phones


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="data/models/g2p-en", help="G2P model folder")
    parser.add_argument("--limit", type=int, default=0, help="first N test words (0: all)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    test = data.split(data.load_examples())["test"]
    test = test[: args.limit] if args.limit else test
    systems = {"g2p-en (onnxruntime)": G2PRuntime(args.model).phones, "espeak-ng": espeak_phones}
    rows = {}
    print(f"{len(test)} held-out CMUdict words\n")
    print("| system | phone error % | words wrong % | ms per word |\n|---|---|---|---|")
    for name, predict in systems.items():
        start = time.perf_counter()
        scores = phone_error_rate(predict, test)
        scores["ms_per_word"] = 1000 * (time.perf_counter() - start) / len(test)
        rows[name] = scores
        print(
            f"| {name} | {100 * scores['per']:.2f} | {100 * scores['word_error']:.2f} | "
            f"{scores['ms_per_word']:.2f} |",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
