"""Tune the model folder's logit offsets on the development books (calibrate.py in the
package says why), write them into its labels.json, print the F1s before and after.

    python recipes/punctuation/calibrate.py --model data/models/punct-en --data exp/punct/data
"""

import argparse
import json
from pathlib import Path

import numpy as np

from asr.punctuation.calibrate import tune_case_bias, tune_punct_bias
from asr.punctuation.metrics import capital_f1, punct_f1s
from asr.punctuation.runtime import LABELS_FILE, TaggerRuntime

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--model", required=True, help="model folder (its labels.json is updated)")
parser.add_argument("--data", required=True, help="prepare.py's output folder (dev.npz)")
parser.add_argument("--window", type=int, default=40, help="words an utterance")
args = parser.parse_args()

with np.load(Path(args.data) / "dev.npz") as dev:
    n = len(dev["ids"]) // args.window * args.window
    ids, cases, puncts = (dev[k][:n] for k in ("ids", "cases", "puncts"))
runtime = TaggerRuntime(args.model)
case_parts, punct_parts = [], []
for batch in np.split(ids.reshape(-1, args.window), range(256, n // args.window, 256)):
    case_logits, punct_logits = runtime.logits_of_ids(batch)  # (B, W, C), (B, W, P)
    case_parts.append(case_logits.reshape(-1, case_logits.shape[-1]))
    punct_parts.append(punct_logits.reshape(-1, punct_logits.shape[-1]))
case_logits, punct_logits = np.concatenate(case_parts), np.concatenate(punct_parts)
punct_bias = tune_punct_bias(punct_logits, puncts)
case_bias = tune_case_bias(case_logits, cases)
for name, pb, cb in (("before", 0 * punct_bias, 0 * case_bias), ("after", punct_bias, case_bias)):
    f1s = {k: round(v.f1, 4) for k, v in punct_f1s(puncts, (punct_logits + pb).argmax(-1)).items()}
    f1s["capital"] = round(capital_f1(cases, (case_logits + cb).argmax(-1)).f1, 4)
    print(f"dev, {n} words, {args.window}-word windows, {name}: {f1s}")
labels_path = Path(args.model) / LABELS_FILE
labels = json.loads(labels_path.read_text(encoding="utf-8"))
labels["punct_bias"], labels["case_bias"] = punct_bias.tolist(), case_bias.tolist()
labels_path.write_text(json.dumps(labels, indent=1, ensure_ascii=False), encoding="utf-8")
print(f"offsets written to {labels_path}: punct {punct_bias.tolist()}, case {case_bias.tolist()}")
