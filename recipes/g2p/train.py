"""Train the G2P model on CMUdict, export it, score it on the held-out words.

    python recipes/g2p/train.py --out exp/g2p --model-dir data/models/g2p-en [--minutes 20]

Prints the development curve (exp/g2p/train.log) and the ONNX model's phone error rate on
the test words (the committed rule in asr/g2p/data.py). benchmarks/g2p.py compares it with
espeak-ng on the same words.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from asr.g2p import G2PRuntime, data
from asr.g2p.train import G2PTrainConfig, TrainConfig, export, fit, phone_error_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="exp/g2p", help="run folder (g2p.pt, train.log)")
    parser.add_argument("--model-dir", default="data/models/g2p-en", help="exported folder")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    parser.add_argument("--eval-every", type=int, default=1000, help="steps between dev scores")
    args = parser.parse_args()
    train = TrainConfig(max_minutes=args.minutes, eval_every=args.eval_every)
    best = fit(dataclasses.replace(G2PTrainConfig(), train=train), args.out)
    print("best on the development words:", json.dumps(best))
    export(f"{args.out}/g2p.pt", args.model_dir)
    test = data.split(data.load_examples())["test"]
    scores = phone_error_rate(G2PRuntime(args.model_dir).phones, test)
    print("onnx on the test words:", json.dumps(scores))


if __name__ == "__main__":
    main()
