"""Sample the training and development books into exp/punct/data (about 2 minutes).

    python recipes/punctuation/prepare.py --config recipes/punctuation/config.toml \
        --books ../shared/data/gutenberg ../shared/data/gutenberg_extra --out exp/punct/data

The first --books folder is data/gutenberg: the held-out rule reads its index.tsv.
"""

import argparse
import json

from asr.config import apply_overrides, load_toml_section
from asr.punctuation.data import PrepareConfig
from asr.punctuation.train import prepare

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--config", required=True, help="recipe config (its [prepare] section)")
parser.add_argument("--books", nargs="+", required=True, help="book folders with index.tsv")
parser.add_argument("--out", required=True, help="output folder")
parser.add_argument("--set", nargs="*", default=[], help="overrides of [prepare]: key=value")
args = parser.parse_args()
config = apply_overrides(load_toml_section(PrepareConfig, args.config, "prepare"), args.set)
print(json.dumps(prepare(args.books, args.out, config), indent=2))
