"""Hotwords on dev: recall of the rare words with and without them given, WER on and off,
and what a list costs.

    python benchmarks/hotwords.py --manifest data/manifests/mini/dev.jsonl \
        --model data/models/en-default data/models/en-phones

The list: every word of the manifest's transcripts with at least 4 letters that is outside
the `--common` (15,000) commonest words of the model's lexicon (its first lines: `asr lm
build` writes the commonest first) or not in it at all, given as one list at the default
boost. Recall: of those words' occurrences in the references, the share the hypothesis has
(per utterance, min(count in reference, count in hypothesis)). The acoustic model runs once
per model; each decoding reuses its log-probs. Cost: building the search for the list (its
first use: trie and boosted LM), and the time a request adds with it built (1,000 words:
the list padded with further lexicon words), on one utterance.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from asr.decode import (
    DecodingOptions,
    _beam_decoder,
    _flashlight_tokens,
    _hotword_decoder,
    decode,
)
from asr.hotwords import DEFAULT_BOOST, Hotword
from asr.inference.recognizer import load_model
from asr.metrics import error_counts
from asr.tune import cache_log_probs, decode_cached


def lexicon_words(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return list(dict.fromkeys(line.split(" ", 1)[0] for line in f if line.strip()))


def rare_words(refs: list[str], lexicon: list[str], common: int) -> list[str]:
    frequent = set(lexicon[:common])
    seen = Counter(w for ref in refs for w in ref.split())
    return sorted(w for w in seen if len(w) >= 4 and w not in frequent and w.isalpha())


def recall(refs: list[str], hyps: list[str], words: set[str]) -> tuple[int, int]:
    hits = total = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        wanted = Counter(w for w in ref.split() if w in words)
        got = Counter(hyp.split())
        total += sum(wanted.values())
        hits += sum(min(n, got[w]) for w, n in wanted.items())
    return hits, total


def timed_decode(cache, vocab, options) -> tuple[list[str], float]:
    start = time.perf_counter()
    texts = decode_cached(cache, vocab, options)
    return texts, time.perf_counter() - start


def request_cost(cache, vocab, options: DecodingOptions, hotwords, repeats: int = 5) -> dict:
    """Build time of the list's search (the process has built another list before: its
    lexicon is scored), and the added time of one utterance with it built."""
    tokens = tuple(_flashlight_tokens(vocab))
    with_list = DecodingOptions(**{**vars(options), "hotwords": tuple(hotwords)})
    _beam_decoder(tokens, options)
    start = time.perf_counter()
    _hotword_decoder(tokens, with_list)  # uncached: a list this process has not seen
    build = time.perf_counter() - start
    mat = cache.log_probs[int(np.argmax([len(m) for m in cache.log_probs]))][None]
    lens = np.array([mat.shape[1]])

    def best(opts) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            decode(mat, lens, vocab, opts)
            times.append(time.perf_counter() - t)
        return min(times)

    plain, boosted = best(options), best(with_list)
    return {
        "hotwords": len(hotwords),
        "build_ms": 1000 * build,
        "utterance_frames": int(mat.shape[1]),
        "decode_ms_without": 1000 * plain,
        "decode_ms_with": 1000 * boosted,
        "added_ms": 1000 * (boosted - plain),
    }


def first_list_cost(vocab, options: DecodingOptions, hotwords) -> float:
    """Seconds to build a process's first list (its lexicon scored, kept after)."""
    tokens = tuple(_flashlight_tokens(vocab))
    _beam_decoder(tokens, options)
    start = time.perf_counter()
    _beam_decoder(tokens, DecodingOptions(**{**vars(options), "hotwords": tuple(hotwords)}))
    return time.perf_counter() - start


def run_model(model: str, manifest: str, common: int, boosts: list[float]) -> dict:
    recognizer = load_model(model, "cpu", "torch")
    options = recognizer.default_options
    vocab = recognizer.vocab
    cache = cache_log_probs(recognizer, manifest)
    lexicon = lexicon_words(options.lexicon_path)
    words = rare_words(cache.refs, lexicon, common)
    first = first_list_cost(vocab, options, [Hotword((w,)) for w in words[:1]])
    result = {"model": model, "rare_words": len(words), "examples": words[:12]}
    result["first_list_ms"] = 1000 * first
    rows = {"off": timed_decode(cache, vocab, options)}
    for boost in boosts:
        hotwords = tuple(Hotword((w,), boost) for w in words)
        with_list = DecodingOptions(**{**vars(options), "hotwords": hotwords})
        rows[f"boost {boost:g}"] = timed_decode(cache, vocab, with_list)
    result["rows"] = {}
    for name, (hyps, seconds) in rows.items():
        hits, total = recall(cache.refs, hyps, set(words))
        result["rows"][name] = {
            "wer": error_counts(cache.refs, hyps, "word").rate,
            "recall": hits / max(1, total),
            "occurrences": total,
            "seconds": seconds,
        }
    hotwords = [Hotword((w,)) for w in words]
    pad = [Hotword((w,)) for w in lexicon[common:] if w not in set(words)]
    result["cost_list"] = request_cost(cache, vocab, options, hotwords)
    result["cost_1000"] = request_cost(cache, vocab, options, (hotwords + pad)[:1000])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", default="data/manifests/mini/dev.jsonl")
    parser.add_argument("--model", nargs="+", default=["data/models/en-default"])
    parser.add_argument("--common", type=int, default=15_000)
    parser.add_argument("--boost", type=float, nargs="+", default=[DEFAULT_BOOST])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = [run_model(m, args.manifest, args.common, args.boost) for m in args.model]
    print(f"{'model':<16} {'list':<10} {'rare':>5} {'occ':>4} {'recall':>7} {'WER':>7} "
          f"{'decode s':>8}")  # fmt: skip
    for r in results:
        for name, row in r["rows"].items():
            print(
                f"{Path(r['model']).name:<16} {name:<10} {r['rare_words']:>5} "
                f"{row['occurrences']:>4} {100 * row['recall']:>6.1f}% {100 * row['wer']:>6.2f}% "
                f"{row['seconds']:>8.1f}"
            )
    print(f"\n{'model':<16} {'hotwords':>8} {'build ms':>9} {'request ms':>10} {'+ ms':>6}")
    for r in results:
        print(f"{Path(r['model']).name:<16} {'first':>8} {r['first_list_ms']:>9.0f}")
        for c in (r["cost_list"], r["cost_1000"]):
            print(
                f"{Path(r['model']).name:<16} {c['hotwords']:>8} {c['build_ms']:>9.0f} "
                f"{c['decode_ms_with']:>10.0f} {c['added_ms']:>6.1f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
