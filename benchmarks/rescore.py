"""A word LSTM LM rescoring the beam's n-best lists (issue 32, direction 4).

    python benchmarks/rescore.py --rnnlm exp/rnnlm/rnnlm.pt \
        --tune data/manifests/mini_spk/held_out.jsonl \
        --test data/manifests/mini/dev.jsonl data/manifests/so762_spk/held_out.jsonl

Per hypothesis h of the model's n-best (its beam already scores the n-gram LM):
    beam score(h) + b * log P_lstm(h) + s * |h|
with (b, s) chosen on --tune and applied to each --test set. Prints WER of the 1-best, of
the rescored choice, and of the n-best's oracle, and the LSTM's cost per utterance. The
n-best lists are cached (--cache), so a second LSTM costs only its scoring.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from asr.decode import decode
from asr.inference.recognizer import load_model
from asr.manifest import read_manifest
from asr.metrics import error_counts
from asr.rnnlm.score import RNNLMScorer
from asr.text import normalize_text

LSTM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
WORD_SCORES = (-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0)


@dataclass
class NBest:
    ref: str
    texts: list[str]  # best first
    beam_scores: list[float]  # the beam's total scores (acoustic + n-gram LM + words)
    seconds: float  # decoding time of the utterance


def collect(recognizer, manifest: str, size: int) -> list[NBest]:
    options = replace(recognizer.default_options, nbest=size)
    lists = []
    for utt in read_manifest(manifest):
        start = time.perf_counter()
        log_probs, lengths = recognizer.log_probs([recognizer.waveform(utt.audio_filepath)])
        (hyp,) = decode(log_probs, lengths, recognizer.vocab, options)
        seconds = time.perf_counter() - start
        hyps = [hyp, *hyp.alternatives]
        lists.append(
            NBest(
                normalize_text(utt.text), [h.text for h in hyps], [h.score for h in hyps], seconds
            )
        )
    return lists


def cached_nbest(recognizer, manifest: str, size: int, cache: Path) -> list[NBest]:
    path = cache / f"{Path(manifest).parent.name}-{Path(manifest).stem}-n{size}.json"
    if path.is_file():
        return [NBest(**item) for item in json.loads(path.read_text())]
    lists = collect(recognizer, manifest, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([vars(n) for n in lists]))
    return lists


def lstm_scores(scorer: RNNLMScorer, lists: list[NBest]) -> tuple[list[np.ndarray], float]:
    """Per utterance (C,) LSTM log-probs of its hypotheses; mean seconds per utterance."""
    start, scores = time.perf_counter(), []
    for nbest in lists:
        scores.append(np.array(scorer.log_probs(nbest.texts)))
    return scores, (time.perf_counter() - start) / max(1, len(lists))


def choose(lists, lstm, weight: float, word_score: float) -> list[str]:
    hyps = []
    for nbest, extra in zip(lists, lstm, strict=True):
        words = np.array([len(t.split()) for t in nbest.texts])
        total = np.array(nbest.beam_scores) + weight * extra + word_score * words
        hyps.append(nbest.texts[int(np.argmax(total))])
    return hyps


def wer(lists: list[NBest], hyps: list[str]) -> float:
    return error_counts([n.ref for n in lists], hyps, "word").rate


def tune(lists, lstm) -> tuple[tuple[float, float], float]:
    grid = itertools.product(LSTM_WEIGHTS, WORD_SCORES)
    best_wer, best = min((wer(lists, choose(lists, lstm, *w)), w) for w in grid)
    return best, best_wer


def oracle(nbest: NBest) -> str:
    return min(nbest.texts, key=lambda t: error_counts([nbest.ref], [t], "word").errors)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rnnlm", required=True, help="rnnlm.pt (recipes/rnnlm/train.py)")
    parser.add_argument("--tune", required=True, help="manifest the weights are chosen on")
    parser.add_argument("--test", nargs="+", required=True, help="manifests to report")
    parser.add_argument("--model", default="data/models/en-phones", help="model folder")
    parser.add_argument("--nbest", type=int, default=16, help="hypotheses per utterance")
    parser.add_argument("--cache", default="exp/rescore", help="n-best lists per manifest")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    recognizer = load_model(args.model, "cpu")
    scorer = RNNLMScorer(args.rnnlm)
    sets, lstm, cost = {}, {}, {}
    for manifest in dict.fromkeys([args.tune, *args.test]):
        sets[manifest] = cached_nbest(recognizer, manifest, args.nbest, Path(args.cache))
        lstm[manifest], cost[manifest] = lstm_scores(scorer, sets[manifest])
    weights, tuned_wer = tune(sets[args.tune], lstm[args.tune])
    print(f"(LSTM weight, word score) best on {args.tune}: {weights}, WER {100 * tuned_wer:.2f}%")
    print(
        "\n| set | 1-best | rescored | best (b, s) on the set itself | n-best oracle "
        "| decode s/utt | LSTM s/utt |"
    )
    print("|---|---|---|---|---|---|---|")
    results = {"weights": weights, "tune": args.tune, "rnnlm": args.rnnlm, "sets": {}}
    for manifest, lists in sets.items():
        own, own_wer = tune(lists, lstm[manifest])
        row = {
            "one_best": wer(lists, [n.texts[0] for n in lists]),
            "rescored": wer(lists, choose(lists, lstm[manifest], *weights)),
            "self_tuned": own_wer,
            "self_weights": own,
            "oracle": wer(lists, [oracle(n) for n in lists]),
            "decode_seconds": float(np.mean([n.seconds for n in lists])),
            "lstm_seconds": cost[manifest],
        }
        results["sets"][manifest] = row
        print(
            f"| {manifest} | {100 * row['one_best']:.2f} | {100 * row['rescored']:.2f} "
            f"| {100 * own_wer:.2f} {own} | {100 * row['oracle']:.2f} "
            f"| {row['decode_seconds']:.3f} | {row['lstm_seconds']:.3f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
