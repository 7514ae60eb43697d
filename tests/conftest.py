"""Shared fixtures: everything is generated here; no test needs ../shared or a network."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.text import Vocabulary
from asr.transcribe import Recognizer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "sample.wav"  # flite's slt voice, made with the line below
SAMPLE_TEXT = (  # flite -voice slt -t "<this, capitalized and punctuated>" -o sample.wav
    "the old man walked slowly along the river thinking of the long winter that was coming"
)
MODEL_FOLDER_FILES = {"model.pt", "model.onnx", "decoding.json", "lm/lm.bin", "lm/lexicon.txt"}


def folder_file_sizes(folder: Path) -> dict[str, int]:
    """Size in bytes of every file under `folder`, by its path relative to it."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(autouse=True, scope="session")
def _feature_cache_in_tmp(tmp_path_factory):
    """Training runs cache their features in a folder of this test session, not ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("ASR_FEATURE_CACHE", str(tmp_path_factory.mktemp("feature_cache")))
    yield
    patch.undo()


@pytest.fixture
def wav_file(tmp_path: Path):
    """Write a waveform to a WAV file and return its path."""

    def write(samples: np.ndarray, sample_rate: int = 16_000, name: str = "a.wav") -> Path:
        path = tmp_path / name
        sf.write(path, samples, sample_rate, subtype="PCM_16")
        return path

    return write


@pytest.fixture
def noise():
    def make(seconds: float, sample_rate: int = 16_000, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return (0.1 * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32)

    return make


# --- decoder tests: hand-built CTC log-prob matrices -------------------------------------

VOCAB = Vocabulary.english()

needs_kenlm = pytest.mark.skipif(
    shutil.which("lmplz") is None or shutil.which("build_binary") is None,
    reason="KenLM tools missing (scripts/install_kenlm.sh)",
)


def peaky_log_probs(
    spans: list[dict[str, float]], frames_per_token: int = 3, floor: float = -12.0
) -> torch.Tensor:
    """(T, V) log-probs: per span, one frame with the given {char: prob} mixture, then blanks.

    A span {"a": 0.6, "o": 0.4} is an acoustically ambiguous character; " " is a word
    boundary. Every other frame is blank, so repeats stay separate tokens.
    """
    rows = []
    for span in spans:
        emit = torch.full((len(VOCAB),), floor)
        for char, prob in span.items():
            emit[VOCAB.encode(char)[0]] = torch.tensor(prob).log()
        rows.append(emit)
        blank = torch.full((len(VOCAB),), floor)
        blank[VOCAB.blank_id] = 0.0
        rows += [blank] * (frames_per_token - 1)
    return torch.stack(rows).log_softmax(dim=-1)


def text_log_probs(text: str, frames_per_token: int = 3) -> torch.Tensor:
    """(T, V) log-probs that spell `text` with certainty."""
    return peaky_log_probs([{ch: 1.0} for ch in text], frames_per_token)


def tone_oracle_log_probs(wave: np.ndarray, sample_rate: int, hop_length: int) -> torch.Tensor:
    """(T, V) log-probs of a tone-corpus waveform, read off the spectrum, with no training.

    A stand-in acoustic model with a known frame rate: frame t is centred on sample
    t * hop_length (as the real front end's frames are); each character's probability is
    the product of the energies at its two chord frequencies; quiet frames are blank.
    """
    grid = np.geomspace(250.0, 6000.0, 16)
    n_fft = 1024
    spec = torch.stft(
        torch.from_numpy(wave),
        n_fft,
        hop_length,
        win_length=400,
        window=torch.hann_window(400),
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).abs()  # (F, T)
    bins = torch.from_numpy(np.round(grid * n_fft / sample_rate).astype(np.int64))
    energy = spec[bins].T  # (T, 16)
    share = energy / energy.sum(dim=1, keepdim=True).clamp_min(1e-8)
    low, high = share[:, :8], share[:, 8:]  # (T, 8) each
    ids = torch.arange(1, len(VOCAB))
    chars = low[:, ids % 8] * high[:, ids // 8]  # (T, V-1)
    loud = (energy.max(dim=1).values > 5.0).float()[:, None]  # (T, 1)
    probs = torch.cat([1.0 - loud + 1e-4, loud * chars / chars.sum(1, keepdim=True) + 1e-4], 1)
    return (probs / probs.sum(dim=1, keepdim=True)).log()


class ToneOracleRecognizer(Recognizer):
    """A Recognizer whose "acoustic model" is `tone_oracle_log_probs` at 20 ms per frame."""

    hop_length = 320

    def __init__(self) -> None:
        self.vocab = VOCAB
        self.device = torch.device("cpu")
        self.source = "tone oracle"

    @property
    def sample_rate(self) -> int:
        return 16_000

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def log_probs(self, waveforms):
        mats = [tone_oracle_log_probs(w, self.sample_rate, self.hop_length) for w in waveforms]
        lens = torch.tensor([m.shape[0] for m in mats])
        batch = torch.full((len(mats), int(lens.max()), len(VOCAB)), -30.0)
        for b, m in enumerate(mats):
            batch[b, : m.shape[0]] = m
        return batch, lens
