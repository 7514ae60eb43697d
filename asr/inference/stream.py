"""Streaming recognition: audio in as it arrives, partial text at once, final text at pauses.

    stream = asr.load_model("data/models/en-stream").stream()
    for block in blocks:                  # float32 mono at stream.sample_rate, any size
        for event in stream.accept(block):
            print(event.kind, event.text)  # "partial" ... then "final" at each pause
    events = stream.finish()              # the last final result

Three stages, each carrying its own state, so that a stream holds only what decoding needs:
`FeatureStream` (samples -> normalized log-mel frames: the centered STFT and the "running"
normalization are causal, so the frames equal those of the whole file), `AcousticStream`
(frames -> log-prob rows, one latency-controlled step of the runner's `stream_step` at a
time, in either runtime: they equal the model's output on the whole file) and
`SegmentDecoder` (the rows through the beam search of `decode.StreamSearch`, or greedy; an
endpoint after `endpoint_seconds` of blank frames ends an utterance, whose final text is
the search's and whose words are timed by forced alignment). A final result's text is
written by the stream's punctuator (case, punctuation, numbers: asr/punctuation) when it has
one, its spoken words kept in `raw_text` and `words`; partial results stay spoken words.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from asr.audio import iter_audio_blocks
from asr.decode import DecodingOptions, Hypothesis, StreamSearch, greedy_search
from asr.frames import StreamWindow, subsampled_length
from asr.inference.align import WordTiming, align_words
from asr.logmel import LogMelExtractor, frame_count, log_mel_frames
from asr.text import Vocabulary
from asr.usererror import UserError

if TYPE_CHECKING:  # the recognizer hands a stream its punctuator
    from asr.punctuation.restore import Punctuator

__all__ = [
    "AcousticStream",
    "FeatureStream",
    "STREAM_DECODERS",
    "SegmentDecoder",
    "Stream",
    "StreamConfig",
    "StreamError",
    "StreamEvent",
    "StreamRunner",
    "stream_file",
]


class StreamError(UserError, ValueError):
    """A model or an input that cannot stream (its normalization, its encoder, the audio)."""


class StreamRunner(Protocol):
    """What steps a stream: `runtime_torch.TorchRunner` or `runtime_onnx.OnnxRunner`."""

    vocab: Vocabulary
    sample_rate: int
    frame_seconds: float
    stream_window: StreamWindow | None  # None: the model cannot stream
    stream_features: LogMelExtractor  # the numpy extractor with the model's statistics

    def initial_states(self) -> np.ndarray:
        """(L, S, 1, H) zero forward states."""
        ...

    def stream_step(self, feats, first: int, last: int, states) -> tuple[np.ndarray, ...]:
        """(1, W, n_mels) window, its valid frames [first, last), states -> (chunk, V)
        log-probs, new states."""
        ...


@dataclass(frozen=True)
class StreamConfig:
    # a run of this many seconds of output frames whose best token is a blank or a word
    # boundary, after speech, ends an utterance (its final result)
    endpoint_seconds: float = 0.6
    max_segment_seconds: float = 30.0  # an utterance this long is ended where it is
    # the forward direction starts afresh after an endpoint, as each training utterance did
    # (a stream of many utterances is not one long utterance, which the model never saw)
    reset_at_endpoint: bool = True

    def __post_init__(self) -> None:
        for name in ("endpoint_seconds", "max_segment_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise StreamError(f"stream.{name} must be a positive number, got {value!r}")


@dataclass
class StreamEvent:
    kind: str  # "partial" (may still change) or "final" (an utterance ended)
    text: str  # a final's written text (a stream with a punctuator); else the spoken words
    start: float  # seconds from the start of the stream where the utterance began
    end: float  # seconds of the stream decoded when this was said
    words: list[WordTiming] = field(default_factory=list)  # final results: timed spoken words
    raw_text: str = ""  # the normalized spoken words (= text, unless written)
    # a final's n-best (DecodingOptions.nbest), best first: (spoken words, search score)
    alternatives: list[tuple[str, float]] = field(default_factory=list)


class FeatureStream:
    """Samples -> normalized log-mel frames, each frame once all its samples have come."""

    def __init__(self, extractor: LogMelExtractor) -> None:
        cfg = extractor.cfg
        self.norm = extractor.normalizer()  # carries a running normalization's sums
        if not self.norm.streams:
            raise StreamError(
                "this model normalizes each utterance by its own statistics, which a stream "
                "does not have until it ends: use a streaming model (data/models/en-stream)"
            )
        self.extractor = extractor
        self.buffer = np.zeros(cfg.n_fft // 2)  # the centered STFT's zero padding, float64
        self.samples = 0  # received so far
        self.frames = 0  # emitted so far

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """(S,) float samples -> (n, n_mels) float32 frames that are now complete."""
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, np.float64)])
        self.samples += len(samples)
        return self._frames()

    def finish(self) -> np.ndarray:
        """The last frames (the end's zero padding); as many in all as the whole file has."""
        self.buffer = np.concatenate([self.buffer, np.zeros(self.extractor.cfg.n_fft // 2)])
        frames = self._frames()
        assert self.frames == frame_count(self.samples, self.extractor.cfg.hop_length)
        return frames

    def _frames(self) -> np.ndarray:
        cfg = self.extractor.cfg
        count = (len(self.buffer) - cfg.n_fft) // cfg.hop_length + 1
        if count <= 0:
            return np.zeros((0, cfg.n_mels), np.float32)
        span = self.buffer[: (count - 1) * cfg.hop_length + cfg.n_fft]
        feats = log_mel_frames(span, self.extractor.window, self.extractor.mel_fbank, cfg)
        self.buffer = self.buffer[count * cfg.hop_length :]
        self.frames += count
        return self.norm(feats)


class AcousticStream:
    """Feature frames -> log-prob rows, one `StreamWindow` step at a time; holds only the
    frames of the next step's window."""

    def __init__(self, runner: StreamRunner) -> None:
        window = runner.stream_window
        if window is None:
            raise StreamError(
                "this model cannot stream: its encoder is fully bidirectional; use a "
                "streaming model (data/models/en-stream, or train one with model.encoder = "
                "'lc_birnn')"
            )
        self.runner, self.window = runner, window
        self.states = runner.initial_states()
        n_mels = runner.stream_features.cfg.n_mels
        self.base = window.start(0)  # feature frame of frames[0] (before the first: zeros)
        self.frames = np.zeros((-self.base, n_mels), np.float32)
        self.step = 0

    def reset_states(self) -> None:
        """Start the forward direction afresh at the next step (a new utterance)."""
        self.states = self.runner.initial_states()

    def accept(self, feats: np.ndarray) -> np.ndarray:
        """(n, n_mels) the next frames -> (m, V) the log-prob rows now computable."""
        return _rows(list(self.steps(feats)), len(self.runner.vocab))

    def steps(self, feats: np.ndarray) -> Iterator[np.ndarray]:
        """(n, n_mels) the next frames -> each step's (chunk, V) rows now computable, one
        step at a time (a step runs when the next is asked for: `reset_states` between two
        applies from the next)."""
        self.frames = np.concatenate([self.frames, feats])
        while self.base + len(self.frames) >= self.window.start(self.step) + self.window.frames:
            yield self._run(self.window.frames, self.window.chunk)

    def finish(self) -> np.ndarray:
        """The rows of the last steps, the stream's end known: as many rows in all as the
        model gives the whole file."""
        return _rows(list(self.final_steps()), len(self.runner.vocab))

    def final_steps(self) -> Iterator[np.ndarray]:
        """`finish`, one step at a time."""
        total = self.base + len(self.frames)  # feature frames of the stream
        out_frames = subsampled_length(total, self.window.stride)
        while self.step * self.window.chunk < out_frames:
            valid = total - self.window.start(self.step)
            yield self._run(valid, out_frames - self.step * self.window.chunk)

    def _run(self, valid: int, emit: int) -> np.ndarray:
        """Step `self.step` over its window ([0, valid) of it real) -> its first `emit` rows."""
        window, start = self.window, self.window.start(self.step)
        feats = self.frames[start - self.base : start - self.base + window.frames]
        if len(feats) < window.frames:
            feats = np.pad(feats, ((0, window.frames - len(feats)), (0, 0)))
        first = max(0, -start)
        log_probs, self.states = self.runner.stream_step(feats[None], first, valid, self.states)
        self.step += 1
        keep = window.start(self.step) - self.base
        self.frames, self.base = self.frames[keep:], self.base + keep
        return log_probs[: min(emit, window.chunk)]


def _rows(rows: list[np.ndarray], vocab_size: int) -> np.ndarray:
    return np.concatenate(rows) if rows else np.zeros((0, vocab_size), np.float32)


class _GreedyStream:
    """Greedy decoding with StreamSearch's interface (accept, best, finish)."""

    def __init__(self, vocab: Vocabulary, options: DecodingOptions | None = None) -> None:
        self.vocab = vocab  # greedy: the options hold nothing it uses
        self.rows: list[np.ndarray] = []

    def accept(self, log_probs: np.ndarray) -> None:
        self.rows.append(log_probs)

    def best(self) -> Hypothesis:
        rows = _rows(self.rows, len(self.vocab))
        ((ids, steps, score),) = greedy_search(
            rows[None], np.array([len(rows)]), self.vocab.blank_id
        )
        return Hypothesis(" ".join(self.vocab.decode(ids).split()), ids, steps, score)

    def finish(self) -> Hypothesis:
        best = self.best()
        self.rows = []
        return best


# DecodingOptions.decoder -> its search over a stream of rows, (vocab, options) -> an
# object with accept, best and finish: the streaming twin of decode.DECODERS.
STREAM_DECODERS = {"greedy": _GreedyStream, "beam": StreamSearch}


class SegmentDecoder:
    """Log-prob rows -> events: a partial whenever the text so far changes, a final one at
    each endpoint (and at the end). Holds the current utterance's rows (for word times)."""

    def __init__(
        self,
        vocab: Vocabulary,
        options: DecodingOptions,
        frame_seconds: float,
        cfg: StreamConfig = StreamConfig(),
    ) -> None:
        self.vocab, self.frame_seconds = vocab, frame_seconds
        self.search = STREAM_DECODERS[options.decoder](vocab, options)
        self.endpoint_frames = max(1, round(cfg.endpoint_seconds / frame_seconds))
        self.max_frames = max(1, round(cfg.max_segment_seconds / frame_seconds))
        self.quiet = (vocab.blank_id, vocab.space_id)  # tokens that are not speech
        self.rows: list[np.ndarray] = []  # this utterance's rows
        self.start = 0  # output frame where this utterance began
        self.frames = 0  # output frames decoded
        self.silent_run = 0  # trailing rows whose best token is quiet
        self.spoken = False  # a speech row since the utterance began
        self.partial = ""

    def accept(self, log_probs: np.ndarray) -> list[StreamEvent]:
        """(n, V) the stream's next rows -> the events they cause."""
        events: list[StreamEvent] = []
        best = log_probs.argmax(-1) if len(log_probs) else np.zeros(0, np.int64)
        begin = 0
        for i, token in enumerate(best.tolist()):
            quiet = token in self.quiet
            self.silent_run = self.silent_run + 1 if quiet else 0
            self.spoken = self.spoken or not quiet
            length = self.frames + i + 1 - self.start
            if (self.spoken and self.silent_run >= self.endpoint_frames) or (
                length >= self.max_frames
            ):
                self._feed(log_probs[begin : i + 1])
                events.append(self._final(self.frames + i + 1))
                begin = i + 1
        self._feed(log_probs[begin:])
        self.frames += len(log_probs)
        if len(log_probs) - begin > 0:
            text = _partial_text(self.search.best(), self.vocab)
            if text != self.partial:
                self.partial = text
                events.append(self._event("partial", text, self.frames))
        return events

    def finish(self) -> list[StreamEvent]:
        """The final result of the utterance under way (empty when nothing was said)."""
        return [self._final(self.frames)]

    def _feed(self, rows: np.ndarray) -> None:
        if len(rows):
            self.search.accept(rows)
            self.rows.append(rows)

    def _final(self, end: int) -> StreamEvent:
        hyp = self.search.finish()
        rows = _rows(self.rows, len(self.vocab))
        offset = self.start * self.frame_seconds
        words = align_words(
            rows, hyp.token_ids, self.vocab, self.frame_seconds, hyp.timesteps, offset, hyp.text
        )
        event = self._event("final", hyp.text, end, words)
        event.alternatives = [(h.text, h.score) for h in [hyp, *hyp.alternatives]]
        self.rows, self.start, self.silent_run, self.spoken, self.partial = [], end, 0, False, ""
        return event

    def _event(self, kind: str, text: str, end: int, words=None) -> StreamEvent:
        seconds = self.frame_seconds
        return StreamEvent(kind, text, self.start * seconds, end * seconds, words or [], text)


def _partial_text(hyp: Hypothesis, vocab: Vocabulary) -> str:
    """The text so far: for a character model its tokens (the word being spelled too);
    for a phone model the finished words."""
    if vocab.phonetic:
        return hyp.text
    return " ".join(vocab.decode(hyp.token_ids).split())


class Stream:
    """One live stream: samples in (`accept`, `accept_pcm16`), events out; `finish` at the end."""

    def __init__(
        self,
        runner: StreamRunner,
        options: DecodingOptions,
        cfg: StreamConfig = StreamConfig(),
        punctuator: Punctuator | None = None,
    ) -> None:
        self.acoustic = AcousticStream(runner)
        self.features = FeatureStream(runner.stream_features)
        self.decoder = SegmentDecoder(runner.vocab, options, runner.frame_seconds, cfg)
        self.punctuator = punctuator  # writes the finals' text; None: spoken words
        self.sample_rate = runner.sample_rate
        self.reset_at_endpoint = cfg.reset_at_endpoint
        self.finished = False

    @property
    def seconds(self) -> float:
        """Audio received so far."""
        return self.features.samples / self.sample_rate

    def accept(self, samples: np.ndarray) -> list[StreamEvent]:
        """(S,) float32 mono samples at `sample_rate` -> events."""
        if self.finished:
            raise StreamError("the stream has finished: start a new one")
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1 or not np.isfinite(samples).all():
            raise StreamError("stream audio must be one channel of finite samples")
        return self._written(self._decode(self.acoustic.steps(self.features.accept(samples))))

    def accept_pcm16(self, data: bytes) -> list[StreamEvent]:
        """Little-endian 16-bit mono PCM bytes (an even count) -> events."""
        if len(data) % 2:
            raise StreamError(f"16-bit PCM comes in whole samples: got {len(data)} bytes")
        return self.accept(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)

    @property
    def partial(self) -> str:
        """The text of the utterance under way, so far."""
        return self.decoder.partial

    def finish(self) -> list[StreamEvent]:
        """The end of the audio: the last rows' events and the final result."""
        if self.finished:
            return []
        self.finished = True
        if self.features.samples == 0:  # nothing was sent: nothing was said
            return [StreamEvent("final", "", 0.0, 0.0)]
        steps = itertools.chain(
            self.acoustic.steps(self.features.finish()), self.acoustic.final_steps()
        )
        return self._written(self._decode(steps) + self.decoder.finish())

    def _decode(self, steps: Iterable[np.ndarray]) -> list[StreamEvent]:
        """Each acoustic step's rows through the decoder, the forward state reset from the
        step after an endpoint's: the same steps, states and events whatever sizes the
        audio arrived in. Of the partials, only the last after the last final is kept."""
        events: list[StreamEvent] = []
        for rows in steps:
            found = self.decoder.accept(rows)
            if self.reset_at_endpoint and any(e.kind == "final" for e in found):
                self.acoustic.reset_states()
            events += found
        last_final = max((i for i, e in enumerate(events) if e.kind == "final"), default=-1)
        partials = [e for e in events[last_final + 1 :] if e.kind == "partial"]
        return [e for e in events[: last_final + 1] if e.kind == "final"] + partials[-1:]

    def _written(self, events: list[StreamEvent]) -> list[StreamEvent]:
        """The events with each final's text written (with a punctuator)."""
        if self.punctuator is None:
            return events
        return [
            replace(e, text=self.punctuator.restore(e.raw_text.split()).text)
            if e.kind == "final" and e.raw_text
            else e
            for e in events
        ]


def stream_file(
    stream: Stream, path: str | Path, realtime: bool = True, block_seconds: float = 0.1
) -> Iterator[StreamEvent]:
    """A file through `stream` in blocks of `block_seconds`, at the pace of real time
    (`realtime`) or as fast as it decodes: its events as they come, the final one last."""
    began = time.monotonic()
    for block in iter_audio_blocks(path, stream.sample_rate, block_seconds):
        if realtime:
            time.sleep(max(0.0, began + stream.seconds - time.monotonic()))
        yield from stream.accept(block)
    yield from stream.finish()
