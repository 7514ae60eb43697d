"""LM weight and word score search on a dev set, reusing cached acoustic log-probs.

The acoustic model runs once over the manifest; each (lm_weight, word_score) setting only
re-runs the beam search. The best setting is written to `decoding.json` in the model
folder, where `asr transcribe` and `asr evaluate` pick it up by default.

    report = tune("exp/x", "dev.jsonl", lm_path="exp/x/lm/lm.bin")
    print(report.best.lm_weight, report.best.word_score, report.written)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from asr.config import ConfigError, option
from asr.decode import DecodingOptions, decode
from asr.inference.model_folder import (
    decoding_grid,
    model_dir,
    resolve_decoding,
    write_decoding,
)
from asr.inference.recognizer import Recognizer, load_model
from asr.manifest import read_manifest
from asr.metrics import error_counts
from asr.text import normalize_text

__all__ = [
    "LM_WEIGHTS",
    "TuneGrid",
    "WORD_SCORES",
    "CachedLogProbs",
    "TuneReport",
    "TuneResult",
    "cache_log_probs",
    "decode_cached",
    "grid_search",
    "tune",
]

LM_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)  # the grid searched unless told otherwise
WORD_SCORES = (-1.0, 0.0, 1.0, 2.0)


@dataclass
class CachedLogProbs:
    log_probs: list[np.ndarray]  # per utterance (T_i, V), padding removed
    refs: list[str]  # normalized reference transcripts
    audio_seconds: float


@dataclass
class TuneResult:
    lm_weight: float
    word_score: float
    wer: float  # corpus word error rate
    seconds: float  # wall time of the search over the whole set


@dataclass
class TuneReport:
    rows: list[TuneResult]  # every setting, in grid order
    best: TuneResult  # the lowest WER
    written: Path | None  # the decoding.json written, None when not saved

    @property
    def table(self) -> str:
        """Every setting's WER and search time, then the best (what `asr decode tune` prints)."""
        lines = [f"{'lm_weight':>9} {'word_score':>10} {'WER %':>7} {'seconds':>8}"]
        for r in self.rows:
            lines.append(
                f"{r.lm_weight:9.2f} {r.word_score:10.2f} {100 * r.wer:7.2f} {r.seconds:8.2f}"
            )
        best = self.best
        lines.append(
            f"best: lm_weight {best.lm_weight} word_score {best.word_score} WER {best.wer:.2%}"
        )
        return "\n".join(lines)


def cache_log_probs(recognizer: Recognizer, manifest: str | Path, batch_size: int = 8):
    """Run the acoustic model once over a manifest; keep the log-probs (numpy)."""
    utterances = read_manifest(manifest, allow_empty=False)
    mats, seconds = [], 0.0
    for start in range(0, len(utterances), batch_size):
        chunk = utterances[start : start + batch_size]
        waves = [recognizer.waveform(u.audio_filepath) for u in chunk]
        log_probs, out_lens = recognizer.log_probs(waves)
        mats += [log_probs[b, : int(out_lens[b])] for b in range(len(chunk))]
        seconds += sum(len(w) for w in waves) / recognizer.sample_rate
    return CachedLogProbs(mats, [normalize_text(u.text) for u in utterances], seconds)


def decode_cached(cache: CachedLogProbs, vocab, options: DecodingOptions, batch_size: int = 16):
    """Hypothesis texts of every cached utterance."""
    texts = []
    for start in range(0, len(cache.log_probs), batch_size):
        mats = cache.log_probs[start : start + batch_size]
        lens = np.array([m.shape[0] for m in mats])
        log_probs = np.zeros((len(mats), int(lens.max()), mats[0].shape[1]), np.float32)
        for b, m in enumerate(mats):
            log_probs[b, : len(m)] = m  # (B, T, V), zero-padded
        texts += [h.text for h in decode(log_probs, lens, vocab, options)]
    return texts


def grid_search(
    cache: CachedLogProbs,
    vocab,
    base: DecodingOptions,
    lm_weights: Sequence[float],
    word_scores: Sequence[float],
) -> list[TuneResult]:
    """WER of every (lm_weight, word_score) pair, in grid order."""
    results = []
    for lm_weight in lm_weights:
        for word_score in word_scores:
            options = replace(base, lm_weight=lm_weight, word_score=word_score)
            start = time.perf_counter()
            hyps = decode_cached(cache, vocab, options)
            elapsed = time.perf_counter() - start
            wer = error_counts(cache.refs, hyps, "word").rate
            results.append(TuneResult(lm_weight, word_score, wer, elapsed))
    return results


@dataclass(frozen=True)
class TuneGrid:
    """The (lm_weight, word_score) pairs `tune` tries, and whether it keeps the best."""

    lm_weights: tuple[float, ...] = option(LM_WEIGHTS, "LM weights tried", nargs="+")
    word_scores: tuple[float, ...] = option(WORD_SCORES, "word scores tried", nargs="+")
    save: bool = option(True, "write the best to <model folder>/decoding.json")


def tune(
    model: str | Path,
    dev_manifest: str | Path,
    grid: TuneGrid = TuneGrid(),
    device: str = "auto",
    batch_size: int = 8,
    **overrides,
) -> TuneReport:
    """Beam search with an LM over `dev_manifest` for every (lm_weight, word_score) pair of
    `grid`; with `grid.save`, the best setting goes to the model folder's decoding.json.

    The search starts from `resolve_decoding(model, **overrides)` (e.g. lm_path, beam_size),
    always beam search; an LM is needed, named or in the model folder.
    """
    options = resolve_decoding(model, **{**overrides, "decoder": "beam"})
    if not options.lm_path:
        raise ConfigError("tuning needs an LM: lm_path (--lm), or one in the model folder")
    lm_weights, word_scores = grid.lm_weights, grid.word_scores
    decoding_grid(options, lm_weights, word_scores)  # each point checked before decoding
    recognizer = load_model(model, device)
    cache = cache_log_probs(recognizer, dev_manifest, batch_size)
    rows = grid_search(cache, recognizer.vocab, options, lm_weights, word_scores)
    best = min(rows, key=lambda r: r.wer)
    written = None
    if grid.save:
        chosen = replace(options, lm_weight=best.lm_weight, word_score=best.word_score)
        extra = {"dev_manifest": str(dev_manifest), "dev_wer": best.wer}
        written = write_decoding(model_dir(model), chosen, extra)
    return TuneReport(rows, best, written)
