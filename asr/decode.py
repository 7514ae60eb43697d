"""CTC decoders: interchangeable strategies behind `(log_probs, lengths, ...) -> hypotheses`.

- greedy: best path, repeats merged, blanks removed.
- beam: flashlight-text's CTC beam search (called directly, as torchaudio's `ctc_decoder`
  would build it), lexicon-free or constrained to the words of a lexicon, with an optional
  KenLM n-gram LM (ARPA or binary). The decoder (and
  its LM) is built once per process and options, then reused; with `num_workers > 1` the
  utterances of a batch are searched in parallel by spawn-started worker processes that
  each load the LM once, in their initializer, never per call.

Numpy only: log-probs come as numpy arrays (or CPU torch tensors, read without importing
torch), so the light runtime decodes with the same code as the PyTorch one.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import math
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from asr.config import option
from asr.hotwords import (
    DEFAULT_BOOST,
    MAX_BOOST,
    Hotword,
    boosted_lm,
    hotword_spellings,
    hotword_table,
    parse_hotwords,
)
from asr.text import WORD_BOUNDARY, Vocabulary
from asr.usererror import UserError

log = logging.getLogger(__name__)


class DecodingError(UserError, ValueError):
    """A decoding resource (language model, lexicon) that cannot be used; names the file."""


__all__ = [
    "DECODERS",
    "DecodingError",
    "DecodingOptions",
    "Hypothesis",
    "StreamSearch",
    "as_array",
    "beam_decode",
    "beam_search",
    "decode",
    "greedy_decode",
    "greedy_search",
]

_SIL = WORD_BOUNDARY  # flashlight's word-boundary token; our vocabulary's " " maps to it
_NEVER = -1e4  # log-prob of a token a frame cannot emit (finite: the search adds them)
_UNK = "<unk>"


# Every number a user can give (flags, decoding.json, the API), [low, high]: NaN lies in none,
# infinity only in unk_score's (-inf: an out-of-lexicon word is never emitted). The upper
# bounds keep the search's memory finite (a beam of 10^9 asked for 6 GB, then crashed).
_RANGES = {
    "beam_size": (1, 10_000),
    "beam_size_token": (1, 10_000),
    "beam_threshold": (1e-6, 1e4),
    "lexicon_words": (0, 10_000_000),
    "lm_weight": (0.0, 100.0),
    "word_score": (-100.0, 100.0),
    "unk_score": (-math.inf, 100.0),
    "sil_score": (-100.0, 100.0),
    "nbest": (1, 1_000),
    "num_workers": (1, 256),
}


def _option(default, help: str, flag: str | None = None, saved: bool = True, parse=None):
    """A DecodingOptions field: its default; the help of its command-line flag, which is
    `--<field name>` unless `flag` names another, and reads its value with `parse` (else the
    field's type); whether decoding.json keeps it (`saved`). The CLI builds its decoding
    flags from these, and a model folder saves and reads the saved ones: a new option is
    this one line (and its use below)."""
    return option(default, help, flag, saved=saved, parse=parse)


@dataclass(frozen=True)
class DecodingOptions:
    decoder: str = _option("greedy", "CTC decoder (a name in DECODERS)")
    beam_size: int = _option(50, "hypotheses kept after each frame (beam only)")
    beam_size_token: int | None = _option(None, "tokens tried per frame (none: all)")
    beam_threshold: float = _option(25.0, "drop hypotheses scoring this far below the best")
    lm_path: str | None = _option(None, "KenLM n-gram LM (ARPA or binary)", flag="--lm")
    lexicon_path: str | None = _option(
        None,
        "lexicon ('word w o r d |' lines); with an LM and none named: lexicon.txt beside a "
        "word LM; 'none': lexicon-free search",
        flag="--lexicon",
    )
    lexicon_words: int = _option(
        0, "use the lexicon's first N words (asr lm build writes the commonest first); 0: all"
    )
    lm_weight: float = _option(2.0, "LM log-prob multiplier")
    word_score: float = _option(0.0, "added per emitted word (positive favours more words)")
    unk_score: float = _option(-math.inf, "score of an out-of-lexicon word (-inf: never)")
    sil_score: float = _option(0.0, "added per word boundary token")
    # Summing is CTC's definition, and much better on a model whose posteriors are not peaky.
    log_add: bool = _option(True, "merged hypotheses: sum their probabilities, not keep the max")
    nbest: int = _option(1, "hypotheses returned per utterance, best first", saved=False)
    num_workers: int = _option(
        1, "processes searching utterances in parallel (beam)", "--decode-workers", saved=False
    )
    hotwords: tuple[Hotword, ...] = _option(
        (),
        "words and phrases to favour (lexicon beam search), comma-separated, each with an "
        f"optional ':boost' (default {DEFAULT_BOOST:g}, at most {MAX_BOOST:g}): "
        "'Nautilus, Captain Nemo:8'",
        saved=False,
        parse=parse_hotwords,
    )
    # Not a search setting: what the transcript's text is. The written form needs the
    # punctuation model (asr/punctuation); WER always scores the spoken words.
    raw: bool = _option(
        False,
        "text as the normalized spoken words ('mister smith paid twenty dollars'), not "
        "written ('Mr. Smith paid $20.')",
        saved=False,
    )

    def __post_init__(self) -> None:
        if not all(isinstance(h, Hotword) for h in self.hotwords):  # entries as strings
            object.__setattr__(self, "hotwords", parse_hotwords(self.hotwords))
        object.__setattr__(self, "hotwords", tuple(self.hotwords))
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {list(DECODERS)}, got {self.decoder!r}")
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if value is None and name == "beam_size_token":  # none: every token
                continue
            if isinstance(value, bool) or not low <= value <= high:  # NaN is in no range
                raise ValueError(f"decoding.{name} must be in [{low:g}, {high:g}], got {value}")
        if not isinstance(self.raw, bool):
            raise ValueError(f"decoding.raw must be true or false, got {self.raw!r}")
        if self.nbest > self.beam_size:
            raise ValueError(f"decoding.nbest {self.nbest} > beam_size {self.beam_size}")

    def to_dict(self) -> dict:
        """Fields as JSON-safe values (an infinite score becomes None, a hotword its
        'text:boost' entry)."""
        values = {k: None if v == -math.inf else v for k, v in vars(self).items()}
        values["hotwords"] = [f"{h.text}:{h.boost:g}" for h in self.hotwords]
        return values

    @property
    def takes_hotwords(self) -> bool:
        """Hotwords need the lexicon beam search; greedy and lexicon-free ones ignore them."""
        return self.decoder == "beam" and bool(self.lexicon_path)

    @property
    def search_key(self) -> DecodingOptions:
        """The options that shape the search itself (execution and output settings reset)."""
        return replace(self, num_workers=1, raw=False, nbest=1)


@dataclass
class Hypothesis:
    text: str  # decoded, normalized text
    token_ids: list[int] = field(default_factory=list)  # emitted tokens, blanks and repeats removed
    timesteps: list[int] = field(default_factory=list)  # output frame of each emitted token
    score: float = 0.0  # total log-probability of the best path (beam: incl. LM and word scores)
    alternatives: list[Hypothesis] = field(default_factory=list)  # next n-best, best first


def as_array(values, dtype=np.float32) -> np.ndarray:
    """A numpy array of `values`: a numpy array, or a torch tensor on any device and dtype
    (read through its own methods, so this module never imports torch)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
        values = (values.float() if values.is_floating_point() else values).numpy()
    return np.asarray(values, dtype=dtype)


def greedy_search(
    log_probs, lengths, blank_id: int = 0
) -> list[tuple[list[int], list[int], float]]:
    """Best-path CTC decoding of a batch.

    (B, T, V) log-probs, (B,) valid frames -> per utterance (token ids, frame of each
    token, path log-probability): the argmax per frame, repeats merged, blanks removed.
    """
    log_probs, lengths = as_array(log_probs), as_array(lengths, np.int64)
    best = log_probs.argmax(axis=-1)  # (B, T)
    scores = np.take_along_axis(log_probs, best[..., None], axis=-1)[..., 0]  # (B, T)
    previous = np.pad(best[:, :-1], ((0, 0), (1, 0)), constant_values=blank_id)
    emit = (best != blank_id) & (best != previous)  # (B, T)
    results = []
    for b in range(best.shape[0]):
        n = int(lengths[b])
        frames = np.flatnonzero(emit[b, :n])
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


class _BeamDecoder:
    """A flashlight decoder with what it needs kept alive beside it (the LM, the words)."""

    def __init__(self, make, blank_id: int, lm, words, silence_id: int = -1) -> None:
        self.make = make  # () -> a new flashlight search over the same trie and LM (streams)
        self.decoder = make()
        self.blank_id = blank_id
        self.silence_id = silence_id  # lexicon search: the word-boundary token's id
        self.lm = lm  # the decoder holds a reference the binding does not count
        self.words = words  # word dictionary (lexicon search), None for lexicon-free

    def __call__(self, log_probs: np.ndarray, nbest: int) -> list[_RawHypothesis]:
        """(T, V) float32 log-probs -> the n-best, best first."""
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
        if self.words is not None:
            emissions = self._closing_frame(emissions)
        results = self.decoder.decode(emissions.ctypes.data, *emissions.shape)[:nbest]
        return [self._raw(r.tokens, r.words, r.score) for r in results]

    def _closing_frame(self, emissions: np.ndarray) -> np.ndarray:
        """(T, V) -> (T + 1, V): a last frame that is surely a word boundary. A lexicon
        spelling ends with the boundary token and the search keeps only hypotheses that
        end on one, but models emit none after the last word (their targets have none),
        so without it the last word of an utterance is dropped or paid for."""
        return np.ascontiguousarray(np.concatenate([emissions, self.closing_frame(emissions)]))

    def closing_frame(self, emissions: np.ndarray) -> np.ndarray:
        """(1, V) float32: the boundary token certain, every other one impossible."""
        frame = np.full((1, emissions.shape[1]), _NEVER, dtype=np.float32)
        frame[0, self.silence_id] = 0.0
        return frame

    def _raw(self, path, word_ids, score) -> _RawHypothesis:
        # The path has one label per frame (plus a start state): merge repeats, drop blanks.
        tokens, steps = [], []
        for i, token in enumerate(path):
            if token != self.blank_id and (i == 0 or token != path[i - 1]):
                tokens.append(token)
                steps.append(i)
        words = None
        if self.words is not None:
            words = [self.words.get_entry(w) for w in word_ids if w >= 0]
        return tokens, steps, words, score


@functools.lru_cache(maxsize=8)
def _beam_decoder(tokens: tuple[str, ...], options: DecodingOptions) -> _BeamDecoder:
    """The flashlight decoder for `options`, built (and its LM loaded) once per process."""
    from flashlight.lib.text import decoder as fl
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    if options.hotwords:
        return _hotword_decoder(tokens, options)
    _check_file(options.lm_path, "language model")
    _check_file(options.lexicon_path, "lexicon")
    token_dict = Dictionary(list(tokens))
    blank, silence = token_dict.get_index(tokens[0]), token_dict.get_index(_SIL)
    if options.lexicon_path is None:
        # Lexicon-free search scores token i as LM word i: a token LM is indexed by the token
        # dictionary (torchaudio's own mapping built it in another order, so a character LM
        # scored the wrong letters).
        lm = _kenlm(KenLM, options.lm_path, token_dict) if options.lm_path else fl.ZeroLM()
        opts = fl.LexiconFreeDecoderOptions(**_search_settings(options, len(tokens)))
        make = functools.partial(fl.LexiconFreeDecoder, opts, lm, silence, blank, [])
        return _BeamDecoder(make, blank, lm, None)
    entries = _lexicon_entries(options.lexicon_path, tokens, options.lexicon_words)
    words = _word_dict(entries)
    lm = _kenlm(KenLM, options.lm_path, words) if options.lm_path else fl.ZeroLM()
    trie = _lexicon_trie(entries, len(tokens), words, lm, silence)
    del entries
    return _lexicon_decoder(options, tokens, trie, lm, words, blank, silence)


def _search_settings(options: DecodingOptions, num_tokens: int) -> dict:
    """The flashlight decoder options both searches share."""
    from flashlight.lib.text import decoder as fl

    return {
        "beam_size": options.beam_size,
        "beam_size_token": options.beam_size_token or num_tokens,
        "beam_threshold": options.beam_threshold,
        "lm_weight": options.lm_weight,
        "sil_score": options.sil_score,
        "log_add": options.log_add,
        "criterion_type": fl.CriterionType.CTC,
    }


def _lexicon_decoder(options, tokens, trie, lm, words, blank: int, silence: int) -> _BeamDecoder:
    """The lexicon search over `trie`'s spellings of `words`, scored by `lm`."""
    from flashlight.lib.text import decoder as fl

    opts = fl.LexiconDecoderOptions(
        **_search_settings(options, len(tokens)),
        word_score=options.word_score,
        unk_score=options.unk_score,
    )
    unk = words.get_index(_UNK)
    # the partial holds the trie: the decoder keeps a reference the binding does not count
    make = functools.partial(fl.LexiconDecoder, opts, trie, lm, silence, blank, unk, [], False)
    return _BeamDecoder(make, blank, lm, words, silence)


def _kenlm(kenlm_class, path: str, dictionary):
    """The KenLM model at `path`; DecodingError naming the file when it cannot be loaded."""
    try:
        return kenlm_class(path, dictionary)
    except Exception as err:  # KenLM raises RuntimeError (and others) for a damaged file
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DecodingError(f"{path}: not a readable KenLM language model ({why})") from err


def _lexicon_entries(path: str, tokens: tuple[str, ...], max_words: int = 0) -> list:
    """(word, spelling as bytes of token ids) per line of a 'word w o r d |' lexicon, read
    once; lines of the first `max_words` distinct words only (0: all; `asr lm build` writes
    the commonest first). Words spelled with a token the model cannot emit are skipped
    (and counted in a warning)."""
    token_ids = {token: i for i, token in enumerate(tokens)}
    if len(token_ids) > 256:
        raise ValueError(f"{len(token_ids)} tokens: spellings are stored as bytes (<= 256)")
    entries, skipped, seen = [], [], set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            word, *spelling = line.split() or [""]
            if not word:
                continue
            if not spelling:
                raise DecodingError(f"{path}:{number}: a word without a spelling: {line!r}")
            if max_words and word not in seen and len(seen) >= max_words:
                break
            seen.add(word)
            try:
                entries.append((word, bytes(token_ids[t] for t in spelling)))
            except KeyError:
                skipped.append(word)
    if skipped:
        log.warning(
            "%s: skipped %d word(s) the vocabulary cannot spell, e.g. %s",
            path,
            len(skipped),
            ", ".join(skipped[:5]),
        )
    if not entries:  # a search over no words can only say "": refuse it instead
        why = "every word uses a token the model cannot emit" if skipped else "it has no words"
        raise DecodingError(f"{path}: the lexicon cannot be searched: {why}")
    return entries


def _word_dict(entries: list):
    """The lexicon's words in file order, then <unk>, which unknown words map to."""
    from flashlight.lib.text.dictionary import Dictionary

    words = Dictionary()
    for word, _ in entries:
        if not words.contains(word):
            words.add_entry(word)
    if not words.contains(_UNK):
        words.add_entry(_UNK)
    words.set_default_index(words.get_index(_UNK))
    return words


# flashlight's Trie keeps this many words per spelling (kTrieMaxLabel) and prints a warning
# for each one past it; lexicons of homophones (phone spellings) keep only this many.
TRIE_MAX_WORDS = 6


def _lexicon_trie(entries: list, num_tokens: int, words, lm, silence: int):
    """Every spelling of the lexicon, scored by its word's LM unigram, max-smeared (as
    torchaudio's `ctc_decoder` builds it). The trie is most of a cold start's time and
    memory: for 100k words 0.6 s and 107 MiB (inserts and smearing, measured while
    training shared the CPU; decoding.lexicon_words caps it)."""
    from flashlight.lib.text import decoder as fl

    trie = fl.Trie(num_tokens, silence)
    start = lm.start(False)
    for word, spelling in entries:
        word_id = words.get_index(word)
        trie.insert(list(spelling), word_id, lm.score(start, word_id)[1])
    trie.smear(fl.SmearingMode.MAX)
    return trie


def _hotword_decoder(tokens: tuple[str, ...], options: DecodingOptions) -> _BeamDecoder:
    """The lexicon search of `options` without hotwords, its LM boosted by them
    (`hotwords.boosted_lm`) and its lexicon with their new words (`hotword_spellings`); the
    trie scores a hotword with its bonus, so that its prefixes survive the beam."""
    from flashlight.lib.text import decoder as fl

    if options.lexicon_path is None:
        raise DecodingError(
            "hotwords need the lexicon beam search: a lexicon (--lexicon, or a model folder's "
            "lm/lexicon.txt) and --decoder beam"
        )
    plain = replace(options, hotwords=())
    base = _beam_decoder(tokens, plain)
    lexicon = _scored_lexicon(tokens, plain)
    fresh = [w for h in options.hotwords for w in h.words if not base.words.contains(w)]
    added = hotword_spellings(list(dict.fromkeys(fresh)), tokens, options.lexicon_path)
    words, known = _extended_words(base.words, [w for w, _ in added])
    table = hotword_table(options.hotwords, words.get_index, options.lm_weight or 1.0)
    lm = boosted_lm(base.lm, table, words.get_index(_UNK), known, lexicon.rarest)
    bonus = table.first_word_bonus()
    trie = fl.Trie(len(tokens), base.silence_id)
    for spelling, word_id, score in zip(*lexicon[:3], strict=True):
        trie.insert(spelling, word_id, score + bonus.get(word_id, 0.0))
    for word, spelling in added:
        word_id = words.get_index(word)
        trie.insert(list(spelling), word_id, lexicon.rarest + bonus.get(word_id, 0.0))
    trie.smear(fl.SmearingMode.MAX)
    return _lexicon_decoder(options, tokens, trie, lm, words, base.blank_id, base.silence_id)


class _ScoredLexicon(NamedTuple):
    spellings: list[list[int]]  # token ids of each lexicon line
    word_ids: list[int]  # its word's id in the search's dictionary
    scores: list[float]  # its word's LM unigram log-prob (the trie's score)
    rarest: float  # the lowest of them: what an added word scores


@functools.lru_cache(maxsize=2)
def _scored_lexicon(tokens: tuple[str, ...], options: DecodingOptions) -> _ScoredLexicon:
    """The lexicon of a search without hotwords, kept (a few MiB) once hotwords are used,
    so that a new list's trie costs only its inserts."""
    base = _beam_decoder(tokens, options)
    entries = _lexicon_entries(options.lexicon_path, tokens, options.lexicon_words)
    ids = [base.words.get_index(w) for w, _ in entries]
    start = base.lm.start(False)
    scores = [base.lm.score(start, i)[1] for i in ids]
    spellings = [list(s) for _, s in entries]
    return _ScoredLexicon(spellings, ids, scores, min(scores, default=0.0))


def _extended_words(words, new: list[str]):
    """A copy of the word dictionary `words` with `new` after its words, and the count of
    the old ones (their ids are unchanged: the base LM maps them)."""
    from flashlight.lib.text.dictionary import Dictionary

    known = words.index_size()
    extended = Dictionary()
    for i in range(known):
        extended.add_entry(words.get_entry(i))
    for word in new:
        extended.add_entry(word)
    extended.set_default_index(extended.get_index(_UNK))
    return extended, known


# Held while a beam decoder is built: a search waits for a build `prepare_decoder` began.
_BUILDING = threading.Lock()
_prepared: set = set()  # (tokens, search options) whose build has been started


def prepare_decoder(vocab: Vocabulary, options: DecodingOptions) -> None:
    """Start building the beam decoder of `options` (loading its LM, building its lexicon
    trie, most of a cold start) in a background thread, so that it overlaps reading the
    audio and running the acoustic model; the first search waits for it. Nothing for
    greedy decoding or searches in worker processes."""
    if options.decoder != "beam" or options.num_workers > 1:
        return
    key = (tuple(_flashlight_tokens(vocab)), options.search_key)
    if key in _prepared:
        return
    _prepared.add(key)
    threading.Thread(target=_build_quietly, args=key, daemon=True).start()


def _build_quietly(tokens: tuple[str, ...], options: DecodingOptions) -> None:
    """A prepared build; its errors are raised again by the search, where they are reported."""
    with _BUILDING, contextlib.suppress(Exception):
        _beam_decoder(tokens, options)


def _search(
    tokens: tuple[str, ...], options: DecodingOptions, log_probs: np.ndarray
) -> list[_RawHypothesis]:
    """Beam-search one utterance, (T, V) float32 log-probs -> n-best raw hypotheses."""
    with _BUILDING:
        decoder = _beam_decoder(tokens, options.search_key)
    return decoder(log_probs, options.nbest)


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
    log_probs, lengths, vocab: Vocabulary, options: DecodingOptions
) -> list[list[_RawHypothesis]]:
    """Beam-search a batch: (B, T, V) log-probs, (B,) valid frames -> n-best per utterance."""
    tokens = tuple(_flashlight_tokens(vocab))
    log_probs, lengths = as_array(log_probs), as_array(lengths, np.int64)
    arrays = [log_probs[b, : int(lengths[b])] for b in range(len(lengths))]
    if options.num_workers == 1 or len(arrays) == 1:
        return [_search(tokens, options, x) for x in arrays]
    _beam_decoder(tokens, options.search_key)  # fail here, not in a worker, on a bad path
    shards = [arrays[i :: options.num_workers] for i in range(options.num_workers)]
    done = list(_pool(tokens, options).map(_search_many, [s for s in shards if s]))
    results: list = [None] * len(arrays)
    for i, shard in enumerate(done):
        results[i :: options.num_workers] = shard
    return results


class StreamSearch:
    """The beam search of `options` over a stream of log-prob rows: `accept` rows as they
    come, `best` the hypothesis so far (partial text), `finish` the final n-best's best at
    the end of a segment, after which the next segment starts afresh. Each stream has its
    own search state over the shared trie and LM (built once per process)."""

    def __init__(self, vocab: Vocabulary, options: DecodingOptions) -> None:
        self.vocab = vocab
        with _BUILDING:
            self.base = _beam_decoder(tuple(_flashlight_tokens(vocab)), options.search_key)
        self.search = self.base.make()
        self.search.decode_begin()
        self.frames = 0  # rows accepted in this segment
        self.nbest = options.nbest  # hypotheses a segment's final carries

    def accept(self, log_probs: np.ndarray) -> None:
        """(n, V) log-prob rows, the segment's next."""
        if len(log_probs):
            rows = np.ascontiguousarray(log_probs, dtype=np.float32)
            self.search.decode_step(rows.ctypes.data, *rows.shape)
            self.frames += len(rows)

    def best(self) -> Hypothesis:
        """The best hypothesis so far; its token ids include a word being spelled."""
        if not self.frames:
            return Hypothesis("")
        result = self.search.get_best_hypothesis(0)
        return _to_hypothesis(self.base._raw(result.tokens, result.words, 0.0), self.vocab)

    def finish(self) -> Hypothesis:
        """The segment's best hypothesis, with the next `options.nbest` - 1 as its
        alternatives; the search is ready for the next segment."""
        if self.frames and self.base.words is not None:
            frame = self.base.closing_frame(np.zeros((1, len(self.vocab)), np.float32))
            self.search.decode_step(frame.ctypes.data, *frame.shape)
        self.search.decode_end()
        results = self.search.get_all_final_hypothesis() if self.frames else []
        found = [
            _to_hypothesis(self.base._raw(r.tokens, r.words, r.score), self.vocab)
            for r in results[: self.nbest]
        ]
        best = found[0] if found else Hypothesis("")
        best.alternatives = found[1:]
        self.search.decode_begin()
        self.frames = 0
        return best


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


def greedy_decode(log_probs, lengths, vocab: Vocabulary, options: DecodingOptions):
    """`greedy_search` as hypotheses (the options have nothing to say to it)."""
    paths = greedy_search(log_probs, lengths, vocab.blank_id)
    return [Hypothesis(_join(vocab, ids), ids, steps, score) for ids, steps, score in paths]


def beam_decode(log_probs, lengths, vocab: Vocabulary, options: DecodingOptions):
    """`beam_search` as hypotheses, each with its n-best alternatives."""
    hypotheses = []
    for nbest in beam_search(log_probs, lengths, vocab, options):
        if not nbest:  # the search found no path (e.g. zero frames)
            hypotheses.append(Hypothesis("", score=-math.inf))
            continue
        best, *rest = (_to_hypothesis(raw, vocab) for raw in nbest)
        best.alternatives = rest
        hypotheses.append(best)
    return hypotheses


# The decoders by name: `options.decoder` picks one, the CLI lists them. Each maps (B, T, V)
# log-probs, (B,) valid frames, the vocabulary and the options to one Hypothesis per row.
DECODERS = {"greedy": greedy_decode, "beam": beam_decode}


def decode(
    log_probs,
    lengths,
    vocab: Vocabulary,
    options: DecodingOptions = DecodingOptions(),
) -> list[Hypothesis]:
    """Decode a batch with the strategy `options.decoder` names: (B, T, V) log-probs and (B,)
    valid frames, as numpy arrays or torch tensors (any device)."""
    return DECODERS[options.decoder](log_probs, lengths, vocab, options)


def _join(vocab: Vocabulary, ids: list[int]) -> str:
    return " ".join(vocab.decode(ids).split())
