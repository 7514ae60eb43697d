"""A tone corpus: text "spoken" as one two-tone chord per character, made anywhere in seconds.

Not speech. It exists so that the whole pipeline (manifest, features, training, decoding,
scoring) can be exercised on a fresh machine with no synthesizer and no data, in tests and
in the quickstart. Each character is a chord of two sine tones lasting 70-110 ms, followed
by 50 ms of near-silence so that doubled letters stay two events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.manifest import Utterance, write_manifest
from asr.text import Vocabulary

__all__ = ["ToneConfig", "make_tone_corpus", "render_tones", "render_tones_timed"]

_WORDS = tuple(
    [
        "the",
        "a",
        "cat",
        "dog",
        "sat",
        "ran",
        "on",
        "mat",
        "hat",
        "big",
        "red",
        "sun",
        "sea",
        "see",
        "look",
        "all",
        "will",
        "it",
        "is",
        "we",
        "go",
        "no",
        "yes",
        "up",
        "at",
        "and",
        "to",
        "in",
    ]
)


@dataclass(frozen=True)
class ToneConfig:
    sample_rate: int = 16_000
    min_char_ms: int = 70  # shortest character chord
    max_char_ms: int = 110  # longest character chord
    gap_ms: int = 50  # near-silence after each character
    noise: float = 0.003  # white-noise amplitude everywhere


def _chord(index: int) -> tuple[float, float]:
    """Two frequencies per character, spread on a log scale between 250 Hz and 6 kHz."""
    grid = np.geomspace(250.0, 6000.0, 16)
    return float(grid[index % 8]), float(grid[8 + index // 8])


def render_tones(text: str, rng: np.random.Generator, cfg: ToneConfig) -> np.ndarray:
    """Waveform (S,) of `text`, whose characters must be in the English vocabulary."""
    return render_tones_timed(text, rng, cfg)[0]


def render_tones_timed(
    text: str, rng: np.random.Generator, cfg: ToneConfig
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Waveform (S,) of `text` and each word's (word, start, end) in seconds.

    A word starts where its first character's chord starts and ends where its last
    character's chord ends (the gap after it and the space chord are outside the word).
    """
    ids = Vocabulary.english().encode(text)
    pieces = [np.zeros(int(0.1 * cfg.sample_rate), np.float32)]
    position = len(pieces[0])
    chord_spans = []  # (start, end) sample of each character's chord
    for token in ids:
        ms = rng.integers(cfg.min_char_ms, cfg.max_char_ms + 1)
        t = np.arange(int(ms * cfg.sample_rate / 1000)) / cfg.sample_rate
        low, high = _chord(token)
        tone = 0.3 * np.sin(2 * np.pi * low * t) + 0.3 * np.sin(2 * np.pi * high * t)
        tone *= np.hanning(len(t)) ** 0.5  # soft edges, no clicks
        pieces += [tone.astype(np.float32), np.zeros(cfg.gap_ms * cfg.sample_rate // 1000)]
        chord_spans.append((position, position + len(t)))
        position += len(t) + len(pieces[-1])
    pieces.append(np.zeros(int(0.1 * cfg.sample_rate), np.float32))
    wave = np.concatenate(pieces).astype(np.float32)
    wave += cfg.noise * rng.standard_normal(len(wave)).astype(np.float32)
    return wave, _word_times(text, chord_spans, cfg.sample_rate)


def _word_times(text: str, chord_spans: list[tuple[int, int]], sample_rate: int):
    words, first = [], None
    for i, ch in enumerate(text + " "):
        if ch != " " and first is None:
            first = i
        elif ch == " " and first is not None:
            start, end = chord_spans[first][0], chord_spans[i - 1][1]
            words.append((text[first:i], start / sample_rate, end / sample_rate))
            first = None
    return words


def random_sentence(rng: random.Random, max_words: int = 4) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, max_words)))


def make_tone_corpus(
    out_dir: str | Path, num_utterances: int, seed: int = 0, cfg: ToneConfig = ToneConfig()
) -> Path:
    """Write `num_utterances` WAVs and `manifest.jsonl` under `out_dir`; return the manifest."""
    out_dir = Path(out_dir)
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    text_rng = random.Random(seed)
    audio_rng = np.random.default_rng(seed)
    utterances = []
    for i in range(num_utterances):
        text = random_sentence(text_rng)
        wave = render_tones(text, audio_rng, cfg)
        path = out_dir / "wav" / f"tone{i:05d}.wav"
        sf.write(path, wave, cfg.sample_rate, subtype="PCM_16")
        utterances.append(Utterance(str(path.resolve()), len(wave) / cfg.sample_rate, text))
    manifest = out_dir / "manifest.jsonl"
    write_manifest(manifest, utterances)
    return manifest
