"""The bundled English model (data/models/en-default): within its size budget, loaded when
no model is named, decoding with its own LM, and the same through the API and the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import asr
from asr.metrics import error_counts
from asr.text import normalize_text
from asr.transcribe import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "sample.wav"  # flite's slt voice, made with the line below
SAMPLE_TEXT = (  # flite -voice slt -t "<this, capitalized and punctuated>" -o sample.wav
    "the old man walked slowly along the river thinking of the long winter that was coming"
)
SAMPLE_MAX_WER = 0.4  # measured: 0.25 (4 of 16 words wrong) with the shipped model and LM


@pytest.fixture(scope="module")
def recognizer():
    return asr.load_model(device="cpu")


def test_bundle_holds_model_lm_lexicon_and_settings_within_60_mb():
    files = [p for p in DEFAULT_MODEL.rglob("*") if p.is_file()]
    names = {p.relative_to(DEFAULT_MODEL).as_posix() for p in files}
    assert {"model.pt", "model.onnx", "decoding.json", "lm/lm.bin", "lm/lexicon.txt"} <= names
    assert sum(p.stat().st_size for p in files) <= 60 * 2**20


def test_load_model_without_a_path_decodes_with_the_bundled_lm(recognizer):
    options = recognizer.default_options
    settings = json.loads((DEFAULT_MODEL / "decoding.json").read_text())
    assert options.decoder == "beam"
    assert Path(options.lm_path) == DEFAULT_MODEL / "lm" / "lm.bin"
    assert Path(options.lexicon_path) == DEFAULT_MODEL / "lm" / "lexicon.txt"
    assert options.lm_weight == settings["lm_weight"]
    assert options.word_score == settings["word_score"]


@pytest.mark.slow
def test_bundled_model_transcribes_the_sample_and_the_cli_agrees(recognizer):
    (result,) = recognizer.transcribe([SAMPLE])
    wer = error_counts([SAMPLE_TEXT], [normalize_text(result.text)], "word").rate
    assert wer <= SAMPLE_MAX_WER, result.text
    command = [sys.executable, "-m", "asr", "transcribe", str(SAMPLE), "--device", "cpu"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == result.text
