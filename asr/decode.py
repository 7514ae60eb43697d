"""CTC decoders: interchangeable strategies behind `(log_probs, lengths, ...) -> hypotheses`.

- greedy: best path, repeats merged, blanks removed.
- beam: torchaudio's CTC beam search (flashlight-text), lexicon-free or constrained to the
  words of a lexicon, with an optional KenLM n-gram LM (ARPA or binary). The decoder (and
  its LM) is built once per process and options, then reused; with `num_workers > 1` the
  utterances of a batch are searched in parallel by spawn-started worker processes that
  each load the LM once, in their initializer, never per call.
"""

from __future__ import annotations

import atexit
import functools
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from asr.text import Vocabulary

__all__ = ["DecodingOptions", "Hypothesis", "beam_search", "decode", "greedy_search"]

_SIL = "|"  # flashlight's word-boundary token name; our vocabulary's " " maps to it
_UNK = "<unk>"


@dataclass(frozen=True)
class DecodingOptions:
    decoder: str = "greedy"  # "greedy" (best path) or "beam" (flashlight beam search)
    beam_size: int = 50  # hypotheses kept after each frame (beam only)
    beam_size_token: int | None = None  # tokens tried per frame; None: the whole vocabulary
    beam_threshold: float = 25.0  # drop hypotheses scoring this far below the best
    lm_path: str | None = None  # KenLM ARPA or binary n-gram LM; None: no LM
    lexicon_path: str | None = None  # "word w o r d |" lines; None: lexicon-free search
    lm_weight: float = 2.0  # LM log-prob multiplier
    word_score: float = 0.0  # added per emitted word (positive favours more words)
    unk_score: float = -math.inf  # score of an out-of-lexicon word (-inf: never emitted)
    sil_score: float = 0.0  # added per word boundary token
    # Merged hypotheses: sum their alignments' probabilities (CTC's definition) rather than
    # keep the best; much better on a model whose posteriors are not peaky.
    log_add: bool = True
    nbest: int = 1  # hypotheses returned per utterance (best first)
    num_workers: int = 1  # processes searching utterances in parallel (beam only)

    def __post_init__(self) -> None:
        if self.decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be 'greedy' or 'beam', got {self.decoder!r}")
        for name in ("beam_size", "nbest", "num_workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"decoding.{name} must be >= 1, got {getattr(self, name)}")
        if self.nbest > self.beam_size:
            raise ValueError(f"decoding.nbest {self.nbest} > beam_size {self.beam_size}")
        if self.beam_threshold <= 0:
            raise ValueError(f"decoding.beam_threshold must be > 0, got {self.beam_threshold}")

    def to_dict(self) -> dict:
        """Fields as JSON-safe values (an infinite score becomes None)."""
        return {k: None if v == -math.inf else v for k, v in vars(self).items()}

    @property
    def search_key(self) -> DecodingOptions:
        """The options that shape the search itself (execution settings reset)."""
        return replace(self, num_workers=1)


@dataclass
class Hypothesis:
    text: str  # decoded, normalized text
    token_ids: list[int] = field(default_factory=list)  # emitted tokens, blanks and repeats removed
    timesteps: list[int] = field(default_factory=list)  # output frame of each emitted token
    score: float = 0.0  # total log-probability of the best path (beam: incl. LM and word scores)
    alternatives: list[Hypothesis] = field(default_factory=list)  # next n-best, best first


def greedy_search(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int = 0
) -> list[tuple[list[int], list[int], float]]:
    """Best-path CTC decoding of a batch.

    (B, T, V) log-probs, (B,) valid frames -> per utterance (token ids, frame of each
    token, path log-probability): the argmax per frame, repeats merged, blanks removed.
    """
    scores, best = log_probs.max(dim=-1)  # (B, T), (B, T)
    previous = torch.nn.functional.pad(best[:, :-1], (1, 0), value=blank_id)
    emit = (best != blank_id) & (best != previous)  # (B, T)
    results = []
    for b in range(best.shape[0]):
        n = int(lengths[b])
        frames = emit[b, :n].nonzero().squeeze(1)
        results.append((best[b, frames].tolist(), frames.tolist(), float(scores[b, :n].sum())))
    return results


# --- beam search -------------------------------------------------------------------------

# One search result as plain Python values, cheap to send back from a worker process:
# (token ids incl. boundary tokens, frame of each token, words or None, total score).
_RawHypothesis = tuple[list[int], list[int], list[str] | None, float]


def _flashlight_tokens(vocab: Vocabulary) -> list[str]:
    if " " not in vocab.tokens or _SIL in vocab.tokens:
        raise ValueError(f"beam search needs ' ' (and no {_SIL!r}) in the vocabulary")
    return [_SIL if tok == " " else tok for tok in vocab.tokens]


def _check_file(path: str | None, what: str) -> None:
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"{what} {path}: no such file")


@functools.lru_cache(maxsize=8)
def _beam_decoder(tokens: tuple[str, ...], options: DecodingOptions):
    """The flashlight decoder for `options`, built (and its LM loaded) once per process."""
    from torchaudio.models.decoder import ctc_decoder

    _check_file(options.lm_path, "language model")
    _check_file(options.lexicon_path, "lexicon")
    lm = options.lm_path
    if lm is not None and options.lexicon_path is None:
        lm = _token_lm(lm, tokens)
    return ctc_decoder(
        lexicon=options.lexicon_path,
        tokens=list(tokens),
        lm=lm,
        nbest=options.nbest,
        beam_size=options.beam_size,
        beam_size_token=options.beam_size_token,
        beam_threshold=options.beam_threshold,
        lm_weight=options.lm_weight,
        word_score=options.word_score,
        unk_score=options.unk_score,
        sil_score=options.sil_score,
        log_add=options.log_add,
        blank_token=tokens[0],
        sil_token=_SIL,
        unk_word=_UNK,
    )


def _token_lm(lm_path: str, tokens: tuple[str, ...]):
    """A KenLM over tokens, indexed as the tokens are.

    Lexicon-free search scores token i as LM word i; torchaudio's own mapping builds the LM
    dictionary in another order, so a character LM would score the wrong letters.
    """
    from flashlight.lib.text.decoder import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    token_dict = Dictionary()
    for token in tokens:
        token_dict.add_entry(token)
    return KenLM(lm_path, token_dict)


def _search(
    tokens: tuple[str, ...], options: DecodingOptions, log_probs: np.ndarray
) -> list[_RawHypothesis]:
    """Beam-search one utterance, (T, V) float32 log-probs -> n-best raw hypotheses."""
    decoder = _beam_decoder(tokens, options.search_key)
    emissions = torch.from_numpy(np.ascontiguousarray(log_probs, dtype=np.float32))[None]
    hypos = decoder(emissions, torch.tensor([emissions.shape[1]]))[0]
    with_words = options.lexicon_path is not None
    return [
        (h.tokens.tolist(), h.timesteps.tolist(), list(h.words) if with_words else None, h.score)
        for h in hypos
    ]


_worker_state: dict = {}


def _init_worker(tokens: tuple[str, ...], options: DecodingOptions) -> None:
    """Worker initializer: build the decoder (load the LM) once for this process."""
    _worker_state["args"] = (tokens, options)
    _beam_decoder(tokens, options.search_key)


def _search_many(items: list[np.ndarray]) -> list[list[_RawHypothesis]]:
    tokens, options = _worker_state["args"]
    return [_search(tokens, options, x) for x in items]


_pools: dict[tuple, ProcessPoolExecutor] = {}


def _pool(tokens: tuple[str, ...], options: DecodingOptions) -> ProcessPoolExecutor:
    """A spawn-started pool per (tokens, options), kept for the life of the process."""
    key = (tokens, options)
    if key not in _pools:
        _pools[key] = ProcessPoolExecutor(
            max_workers=options.num_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(tokens, options),
        )
    return _pools[key]


@atexit.register
def shutdown_workers() -> None:
    """Stop the decoding worker processes (also runs at interpreter exit)."""
    for pool in _pools.values():
        pool.shutdown(cancel_futures=True)
    _pools.clear()


def beam_search(
    log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocabulary, options: DecodingOptions
) -> list[list[_RawHypothesis]]:
    """Beam-search a batch: (B, T, V) log-probs, (B,) valid frames -> n-best per utterance."""
    tokens = tuple(_flashlight_tokens(vocab))
    arrays = [log_probs[b, : int(lengths[b])].float().cpu().numpy() for b in range(len(lengths))]
    if options.num_workers == 1 or len(arrays) == 1:
        return [_search(tokens, options, x) for x in arrays]
    _beam_decoder(tokens, options.search_key)  # fail here, not in a worker, on a bad path
    shards = [arrays[i :: options.num_workers] for i in range(options.num_workers)]
    done = list(_pool(tokens, options).map(_search_many, [s for s in shards if s]))
    results: list = [None] * len(arrays)
    for i, shard in enumerate(done):
        results[i :: options.num_workers] = shard
    return results


def _to_hypothesis(raw: _RawHypothesis, vocab: Vocabulary) -> Hypothesis:
    ids, steps, words, score = raw
    # Flashlight's path has one extra boundary state before the first frame: step i is frame i-1.
    kept = [(t, s - 1) for t, s in zip(ids, steps, strict=True) if t != vocab.blank_id]
    # Boundary tokens the search adds at both ends are not part of the text.
    while kept and kept[0][0] == vocab.space_id:
        kept.pop(0)
    while kept and kept[-1][0] == vocab.space_id:
        kept.pop()
    token_ids = [t for t, _ in kept]
    text = " ".join(words) if words is not None else _join(vocab, token_ids)
    return Hypothesis(text, token_ids, [s for _, s in kept], float(score))


def decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    vocab: Vocabulary,
    options: DecodingOptions = DecodingOptions(),
) -> list[Hypothesis]:
    """Decode a batch with the strategy `options.decoder` names."""
    if options.decoder == "greedy":
        paths = greedy_search(log_probs.float().cpu(), lengths.cpu(), vocab.blank_id)
        return [Hypothesis(_join(vocab, ids), ids, steps, score) for ids, steps, score in paths]
    hypotheses = []
    for nbest in beam_search(log_probs, lengths.cpu(), vocab, options):
        if not nbest:  # the search found no path (e.g. zero frames)
            hypotheses.append(Hypothesis("", score=-math.inf))
            continue
        best, *rest = (_to_hypothesis(raw, vocab) for raw in nbest)
        best.alternatives = rest
        hypotheses.append(best)
    return hypotheses


def _join(vocab: Vocabulary, ids: list[int]) -> str:
    return " ".join(vocab.decode(ids).split())
