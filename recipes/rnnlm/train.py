"""Train the word LSTM LM that rescores the beam's n-best lists (issue 32, direction 4).

    asr lm prepare-text ../shared/data/gutenberg/books ../shared/data/gutenberg_extra/books \
        --exclude-ids 3659,14851,135 --out exp/lm/text_big.txt
    python recipes/rnnlm/train.py --text exp/lm/text_big.txt --out exp/rnnlm --minutes 40

Prints validation perplexity as it goes (exp/rnnlm/train.log) and keeps the best
checkpoint (exp/rnnlm/rnnlm.pt). benchmarks/rescore.py measures what it gives.
"""

from __future__ import annotations

import argparse
import dataclasses

from asr.rnnlm.model import RNNLMConfig
from asr.rnnlm.train import RNNLMTrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", required=True, help="one normalized sentence a line")
    parser.add_argument("--out", default="exp/rnnlm", help="run folder (rnnlm.pt, train.log)")
    parser.add_argument("--minutes", type=float, default=40.0, help="training time budget")
    parser.add_argument("--max-lines", type=int, default=None, help="text lines read")
    parser.add_argument("--hidden-size", type=int, default=512, help="LSTM units")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    model = RNNLMConfig(hidden_size=args.hidden_size)
    config = RNNLMTrainConfig(
        model=model, max_minutes=args.minutes, max_lines=args.max_lines, threads=args.threads
    )
    print("config:", dataclasses.asdict(config), flush=True)
    print("best:", fit(args.text, args.out, config))


if __name__ == "__main__":
    main()
