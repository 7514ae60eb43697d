"""Train the tagger on prepared data (CPU, within [train] max_minutes), then export it.

    nice -n 5 python recipes/punctuation/train.py --config recipes/punctuation/config.toml \
        --data exp/punct/data --exp exp/punct/run --export data/models/punct-en
"""

import argparse
import json

from asr.config import load_toml
from asr.punctuation.train import PunctTrainConfig, export, fit

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--config", required=True, help="recipe config")
parser.add_argument("--set", nargs="*", default=[], help="overrides: section.key=value")
parser.add_argument("--data", required=True, help="prepare.py's output folder")
parser.add_argument("--exp", required=True, help="where tagger.pt and train.log go")
parser.add_argument("--export", help="model folder to export the best checkpoint to")
args = parser.parse_args()
config = load_toml(PunctTrainConfig, args.config, args.set)
print(json.dumps(fit(config, args.data, args.exp), indent=2))
if args.export:
    print(export(f"{args.exp}/tagger.pt", args.export))
