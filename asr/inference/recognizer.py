"""The Recognizer: a model's log-prob runner (PyTorch or ONNX) + decoder, batched and chunked.

import asr
recognizer = asr.load_model("exp/quickstart")
print(recognizer.transcribe(["a.wav", "b.flac"])[0].text)

Every request's decoding options come from `Recognizer.options`: the one place a request's
hotwords and `raw` meet the model's own settings (the CLI, the API and each server protocol
call it).

A transcript's text is written as a person would write it ("Mr. Smith paid $20.": case,
punctuation, numbers, by the punctuation model of asr/punctuation), unless the options say
`raw`; its `raw_text` is always the normalized spoken words the decoder wrote ("mister smith
paid twenty dollars"), which WER scores. `Recognizer.writer` decides which, in one place. A
punctuation model folder that is missing or cannot be loaded is a PunctModelError naming it
(and `raw`, which needs no model), raised when the first written text is asked for: never a
silent fall back to the spoken words.

Which runtime computes the log-probs is decided in one place, `resolve_runtime`: the
model folder's ONNX graph through onnxruntime (numpy features, no torch) when it has one
and onnxruntime is installed, else PyTorch. The two give the same log-probs within 1e-4
(tests/test_onnx.py); decoding, chunking and word times are this module's, shared.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from asr import layout
from asr.audio import audio_info, load_audio
from asr.checkpoint import CheckpointError
from asr.decode import DecodingOptions, Hypothesis, as_array, decode, prepare_decoder
from asr.hotwords import (
    MAX_LIST_CHARS,
    Hotword,
    HotwordError,
    HotwordLimitError,
    merge,
    parse_hotwords,
    split_list,
)
from asr.inference.align import WordTiming, align_words
from asr.inference.model_folder import DEFAULT_MODEL, resolve_decoding, resolve_model_path
from asr.inference.segment import SegmentConfig, iter_chunks
from asr.inference.stream import Stream, StreamConfig
from asr.punctuation.restore import Punctuator, WrittenWord, default_punctuator, time_written
from asr.punctuation.runtime import PunctModelError
from asr.text import Vocabulary

__all__ = [
    "DEFAULT_MODEL",
    "ONNX_FILES",
    "RUNTIMES",
    "Recognizer",
    "Transcript",
    "load_model",
    "onnx_graph",
    "request_options",
    "resolve_model_path",
    "resolve_runtime",
]

RUNTIMES = ("auto", "torch", "onnx")
# The ONNX graph a model folder runs (the first present): fp32 compute, else int8 weights.
ONNX_FILES = layout.ONNX_FILES

AudioInput = str | Path | np.ndarray
# A request's hotwords: entries ("Captain Nemo:8"), as a list or one text separated by commas
# or newlines; parsed entries pass as they are.
HotwordEntries = str | Sequence[str | Hotword]


class LogProbRunner(Protocol):
    """What computes log-probs: `runtime_torch.TorchRunner` or `runtime_onnx.OnnxRunner`."""

    vocab: Vocabulary
    sample_rate: int  # Hz the waveforms must have
    frame_seconds: float  # seconds between two output frames

    def log_probs(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mono waveforms -> (B, T', V) float32 log-probs, (B,) output lengths."""
        ...


@dataclass
class Transcript:
    source: str  # file path, or "<array N>" for an in-memory waveform
    # the written text ("Mr. Smith paid $20."); with DecodingOptions.raw, `raw_text`
    text: str
    duration: float  # seconds of audio
    # Decoder output: token ids, frames, score. For a recording decoded in chunks: the
    # stitched text and the sum of the chunks' scores, without token ids.
    hypothesis: Hypothesis
    # timed spoken words (one per word of `raw_text`), when requested
    words: list[WordTiming] = field(default_factory=list)
    chunks: int = 1  # pieces a long recording was decoded in
    # the written words of `text`, each with the indices of the spoken words it stands for
    # ("$20." -> (3, 4)); empty for a raw transcript
    written: list[WrittenWord] = field(default_factory=list)

    @property
    def raw_text(self) -> str:
        """The normalized spoken words the decoder wrote ("mister smith paid twenty
        dollars"): what WER scores."""
        return self.hypothesis.text

    @property
    def written_words(self) -> list[WordTiming]:
        """The words of `text`, timed: each written word spans the spoken words it stands
        for (what subtitles show). A raw transcript's are its timed spoken words, and so
        are those of one whose timed words do not line up with its spoken text."""
        if not self.written or len(self.words) != len(self.raw_text.split()):
            return self.words
        return time_written(self.written, self.words)


class Recognizer:
    """A log-prob runner (features + acoustic model) and the decoding around it."""

    def __init__(
        self,
        runner: LogProbRunner,
        source: str = "",
        default_options: DecodingOptions = DecodingOptions(),
        punct_model: str | Path | None = None,
    ) -> None:
        self.runner = runner
        self.vocab = runner.vocab
        self.source = source
        self.default_options = default_options  # used when transcribe() is given no options
        self.punct_model = punct_model  # writes the text; None: the bundled punct-en

    @property
    def sample_rate(self) -> int:
        return self.runner.sample_rate

    @property
    def frame_seconds(self) -> float:
        """Seconds between two output frames (log-prob rows) of the model."""
        return self.runner.frame_seconds

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> Recognizer:
        """The PyTorch runtime on a checkpoint file or folder (folder/model.pt), decoding
        as `load_model` does (the folder's decoding.json or lm/)."""
        return load_model(path, device, "torch")

    def log_probs(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mono waveforms at `sample_rate` -> (B, T', V) float32 log-probs, (B,) lengths."""
        return self.runner.log_probs(waveforms)

    def options(
        self,
        hotwords: HotwordEntries | None = None,
        max_hotwords: int | None = None,
        hints: Iterable[Hotword] = (),
        base: DecodingOptions | None = None,
        where: str = "hotwords",
        raw: bool | None = None,
    ) -> DecodingOptions:
        """The options a request decodes with: `base` (None: `default_options`) with the
        request's hotwords in place of its own (see `request_options`), and its `raw`
        (True: the spoken words, False: the written text; None: `base`'s)."""
        base = self.default_options if base is None else base
        options = request_options(base, hotwords, max_hotwords, hints, where)
        return options if raw is None else replace(options, raw=raw)

    def punctuator(self) -> Punctuator:
        """The punctuation model that writes transcripts (`punct_model`), loaded once.
        PunctModelError, naming the folder and `raw`, when it cannot be loaded."""
        folder = str(self.punct_model) if self.punct_model else None
        try:
            return default_punctuator(folder)
        except PunctModelError as err:
            raise PunctModelError(f"{err}; {_RAW_HINT}") from err
        except ImportError as err:  # onnxruntime: a dependency of the light install
            raise PunctModelError(f"the written text needs {err.name}; {_RAW_HINT}") from err

    def writer(self, options: DecodingOptions) -> Punctuator | None:
        """What writes the text of results decoded with `options`: the punctuator, or None
        for the spoken words (`options.raw`). The one place this is decided. A phone model
        decoded without its lexicon spells phones ("K.AE.T"), not words: nothing to write."""
        spells_words = not self.vocab.phonetic or (
            options.decoder == "beam" and bool(options.lexicon_path)
        )
        return None if options.raw or not spells_words else self.punctuator()

    def write(self, transcript: Transcript, options: DecodingOptions) -> Transcript:
        """`transcript` with its text written (`writer`), its spoken words kept as they are."""
        punctuator = self.writer(options)
        if punctuator is not None:
            restored = punctuator.restore(transcript.raw_text.split())
            transcript.text, transcript.written = restored.text, restored.words
        return transcript

    def transcribe(
        self,
        inputs: Sequence[AudioInput] | AudioInput,
        options: DecodingOptions | None = None,
        batch_size: int = 8,
        word_timestamps: bool = False,
        segment: SegmentConfig = SegmentConfig(),
        hotwords: Sequence[str] | None = None,
        raw: bool | None = None,
    ) -> list[Transcript]:
        """Transcribe files or waveforms (mono float arrays at `sample_rate`), in input order.

        Inputs longer than `segment.max_seconds` are split at pauses, decoded `batch_size`
        chunks at a time and stitched (see `transcribe_long`); shorter ones are batched.
        Without `options`, the model folder's own settings (`default_options`) apply.
        hotwords: words and phrases to favour, each with an optional ":boost"
        ("Captain Nemo:8"; asr/hotwords.py), in place of the options' own. raw: True for
        the normalized spoken words as each transcript's text, False for the written text
        (case, punctuation, numbers); None: the options' own (`DecodingOptions.raw`).
        """
        options = self.options(hotwords, base=options, raw=raw)
        self.writer(options)  # a punctuation model that cannot load fails before the work
        prepare_decoder(self.vocab, options)  # the LM and lexicon load beside the model's work
        if isinstance(inputs, str | Path | np.ndarray):
            inputs = [inputs]
        results: list[Transcript | None] = [None] * len(inputs)
        short = []
        for i, item in enumerate(inputs):
            if self._duration(item) > segment.max_seconds:
                long = self.transcribe_long(item, options, batch_size, word_timestamps, segment)
                long.source = _source(item, i)
                results[i] = long
            else:
                short.append((i, item))
        for start in range(0, len(short), batch_size):
            chunk = short[start : start + batch_size]
            waves = [self.waveform(x) for _, x in chunk]
            for (i, x), wave, (hyp, words) in zip(
                chunk, waves, self._decode(waves, options, word_timestamps), strict=True
            ):
                duration = len(wave) / self.sample_rate
                transcript = Transcript(_source(x, i), hyp.text, duration, hyp, words)
                results[i] = self.write(transcript, options)
        return results

    def stream(
        self,
        options: DecodingOptions | None = None,
        config: StreamConfig = StreamConfig(),
        hotwords: Sequence[str] | None = None,
        raw: bool | None = None,
    ) -> Stream:
        """A live stream (asr/inference/stream.py): feed it samples as they arrive, get
        partial and final results, the finals written unless `raw` (as `transcribe`'s).
        Needs a streaming model (encoder "lc_birnn")."""
        options = self.options(hotwords, base=options, raw=raw)
        return Stream(self.runner, options, config, self.writer(options))

    def transcribe_long(
        self,
        item: AudioInput,
        options: DecodingOptions | None = None,
        batch_size: int = 8,
        word_timestamps: bool = False,
        segment: SegmentConfig = SegmentConfig(),
    ) -> Transcript:
        """One recording of any length: read in chunks split at pauses, decoded in batches,
        word times shifted by each chunk's offset, the whole text written at the end (unless
        `options.raw`). Memory is bounded by the chunk size."""
        options = self.default_options if options is None else options
        self.writer(options)  # a punctuation model that cannot load fails before the work
        source = item if isinstance(item, np.ndarray) else Path(item)
        texts, words, samples, count, score = [], [], 0, 0, 0.0
        batch: list = []
        for chunk in iter_chunks(source, self.sample_rate, segment):
            batch.append(chunk)
            if len(batch) == batch_size:
                score += self._decode_chunks(batch, options, word_timestamps, texts, words)
                batch = []
            samples, count = chunk.start + len(chunk.wave), count + 1
        if batch:
            score += self._decode_chunks(batch, options, word_timestamps, texts, words)
        text = " ".join(t for t in texts if t)
        hyp = Hypothesis(text, score=score)
        duration = samples / self.sample_rate
        return self.write(Transcript(_source(item, 0), text, duration, hyp, words, count), options)

    def _decode_chunks(self, batch, options, word_timestamps, texts, words) -> float:
        """Decode chunks, appending to `texts` and `words`; return the summed score."""
        decoded = self._decode([c.wave for c in batch], options, word_timestamps, batch)
        for hyp, chunk_words in decoded:
            texts.append(hyp.text)
            words += chunk_words
        return sum(hyp.score for hyp, _ in decoded)

    def _decode(self, waves, options, word_timestamps, chunks=None):
        """(hypothesis, timed words) per waveform; `chunks` give the time offsets."""
        log_probs, out_lens = self.log_probs(waves)
        log_probs, out_lens = as_array(log_probs), as_array(out_lens, np.int64)
        hyps = decode(log_probs, out_lens, self.vocab, options)
        results = []
        for b, hyp in enumerate(hyps):
            words = []
            if word_timestamps:
                offset = chunks[b].start / self.sample_rate if chunks else 0.0
                frames = log_probs[b, : int(out_lens[b])]
                words = align_words(
                    frames,
                    hyp.token_ids,
                    self.vocab,
                    self.frame_seconds,
                    hyp.timesteps,
                    offset,
                    hyp.text,
                )
                # The last frame may reach past the final sample: end at the audio's end.
                end = offset + len(waves[b]) / self.sample_rate
                for word in words:
                    word.end = min(word.end, end)
                    word.start = min(word.start, word.end)
            results.append((hyp, words))
        return results

    def _duration(self, item: AudioInput) -> float:
        if isinstance(item, np.ndarray):
            return len(item) / self.sample_rate
        return audio_info(item).duration

    def waveform(self, item: AudioInput) -> np.ndarray:
        """A file (read and resampled to `sample_rate`) or a mono array, as float32 (S,);
        AudioError for a file that cannot be read."""
        if isinstance(item, np.ndarray):
            if item.ndim != 1:
                raise ValueError(f"waveforms must be mono (S,), got shape {item.shape}")
            return item.astype(np.float32, copy=False)
        return load_audio(item, self.sample_rate)


_RAW_HINT = "the spoken words need no punctuation model: raw=True (asr transcribe --raw)"


def _source(item: AudioInput, index: int) -> str:
    return str(item) if not isinstance(item, np.ndarray) else f"<array {index}>"


def request_options(
    base: DecodingOptions,
    hotwords: HotwordEntries | None = None,
    max_hotwords: int | None = None,
    hints: Iterable[Hotword] = (),
    where: str = "hotwords",
) -> DecodingOptions:
    """`base` with a request's hotwords in place of its own: the one place where they meet.

    hotwords: entries as a list, or one text of them separated by commas or newlines, each
    a word or phrase with an optional ":boost" (asr/hotwords.py); None or empty: `base`'s
    own. max_hotwords: the most entries a request may send (None: any number). hints: weak
    entries (a prompt's words) used where the search can use them, after the entries and
    within `max_hotwords`; dropped elsewhere. `where` names the request's field in errors.

    Sizes are checked before any entry is parsed. HotwordLimitError (a HotwordError) for a
    text over MAX_LIST_CHARS, more than `max_hotwords` entries, or hotwords for a search
    that cannot use them (greedy, lexicon-free); HotwordError for an entry that is wrong.
    """
    entries = _entry_list(hotwords, where)
    if max_hotwords is not None and len(entries) > max_hotwords:
        raise HotwordLimitError(f"{where}: {len(entries)} hotwords; at most {max_hotwords}")
    if entries and not base.takes_hotwords:
        search = "greedy decoding" if base.decoder == "greedy" else "a lexicon-free search"
        raise HotwordLimitError(
            f"{where}: hotwords need the lexicon beam search (decoder beam with a lexicon), "
            f"and these options run {search}"
        )
    texts = [e for e in entries if isinstance(e, str)]
    parsed = merge([*(e for e in entries if isinstance(e, Hotword)), *parse_hotwords(texts, where)])
    if not base.takes_hotwords:  # and no entries (refused above): the hints are dropped
        return base
    weak = list(hints)
    if max_hotwords is not None:  # a long prompt: its first words
        weak = weak[: max(max_hotwords - len(parsed), 0)]
    if not parsed and not weak:
        return base
    return replace(base, hotwords=merge([*parsed, *weak]))


def _entry_list(hotwords: HotwordEntries | None, where: str) -> list[str | Hotword]:
    """A request's entries as a list (a text split at commas and newlines)."""
    if hotwords is None:
        return []
    if isinstance(hotwords, str):
        if len(hotwords) > MAX_LIST_CHARS:
            raise HotwordLimitError(f"{where}: over {MAX_LIST_CHARS} characters")
        return split_list(hotwords)
    entries = list(hotwords) if isinstance(hotwords, list | tuple) else None
    if entries is None or not all(isinstance(e, str | Hotword) for e in entries):
        raise HotwordError(f"{where} must be a list of strings or a string")
    return entries


def load_model(
    path: str | Path | None = None,
    device: str = "auto",
    runtime: str = "auto",
    punct_model: str | Path | None = None,
    **decoding,
) -> Recognizer:
    """A Recognizer from a model folder, checkpoint file or ONNX graph; the bundled model if
    None. `runtime`: "torch", "onnx" or "auto" (see `resolve_runtime`); `device` is torch's.
    `punct_model`: the punctuation model folder writing the text (None: the bundled one).

    The Recognizer's default decoding options are `resolve_decoding(path, **decoding)`, the
    one place they are resolved: a folder's decoding.json and lm/, then `decoding`
    (DecodingOptions fields), so the bundled model decodes with its LM unless told otherwise.

        recognizer = load_model("exp/x", runtime="onnx", beam_size=20)
        text = recognizer.transcribe("a.wav")[0].text
    """
    path = resolve_model_path(path)
    hotwords = decoding.pop("hotwords", None)
    # before the model: a bad option costs nothing
    options = request_options(resolve_decoding(path, **decoding), hotwords)
    if resolve_runtime(path, runtime, device) == "onnx":
        from asr.inference.runtime_onnx import OnnxRunner

        runner = OnnxRunner.from_file(onnx_graph(path))
    else:
        from asr.inference.runtime_torch import TorchRunner

        runner = TorchRunner.from_checkpoint(path, device)
    return Recognizer(runner, str(path), options, punct_model)


def onnx_graph(path: str | Path) -> Path | None:
    """The ONNX graph of a model: `path` itself (an .onnx file), a folder's first of
    ONNX_FILES, or None (a checkpoint file, or a folder without a graph)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return path if path.is_file() else None
    if path.is_dir():
        return next((path / n for n in ONNX_FILES if (path / n).is_file()), None)
    return None


def resolve_runtime(path: str | Path, runtime: str = "auto", device: str = "auto") -> str:
    """Which runtime computes the model's log-probs, "torch" or "onnx": the one place this
    is decided (the CLI passes its --runtime here).

    "auto" is onnx when the model has an ONNX graph (`onnx_graph`), onnxruntime is
    installed and no CUDA device is asked for; torch otherwise. An explicit runtime that
    the model or the installed packages cannot serve fails with a message naming the fix.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    graph = onnx_graph(path)
    has_onnxruntime = importlib.util.find_spec("onnxruntime") is not None
    chosen = runtime
    if runtime == "auto":
        light = graph is not None and has_onnxruntime and not device.startswith("cuda")
        chosen = "onnx" if light or Path(path).suffix == ".onnx" else "torch"
    _check_runtime(path, chosen, graph, has_onnxruntime, explicit=runtime != "auto")
    return chosen


def _check_runtime(path, runtime: str, graph: Path | None, has_onnxruntime: bool, explicit: bool):
    """Raise CheckpointError, naming the fix, when `runtime` cannot run the model at `path`."""
    if runtime == "onnx" and graph is None:
        raise CheckpointError(
            f"{path}: no ONNX graph ({' or '.join(ONNX_FILES)}); write one with "
            f"`asr export {path} --out {path} --onnx`, or use --runtime torch"
        )
    if runtime == "onnx" and not has_onnxruntime:
        raise CheckpointError("the onnx runtime needs onnxruntime: pip install onnxruntime")
    if runtime == "torch" and Path(path).suffix == ".onnx":
        raise CheckpointError(f"{path}: an ONNX graph runs on the onnx runtime, not torch")
    if runtime == "torch" and importlib.util.find_spec("torch") is None:
        why = "the torch runtime" if explicit else f"{path} has no ONNX graph, so it"
        raise CheckpointError(
            f"{why} needs PyTorch, which is not installed: pip install 'asr[train]' (or "
            "export the graph with `asr export --onnx` where torch is installed)"
        )
