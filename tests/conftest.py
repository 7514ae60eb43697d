"""Shared fixtures: everything is generated here; no test needs ../shared or a network."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


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
