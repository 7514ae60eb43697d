"""The bundled English model (data/models/en-phones since issue 32): within its size budget,
loaded when no model is named, decoding with its own LM, and the same through the API and
the CLI."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import (
    MODEL_FOLDER_FILES,
    ROOT,
    SAMPLE,
    SAMPLE_TEXT,
    assert_written,
    folder_file_sizes,
)

import asr
from asr.audio import load_audio, resample
from asr.cli import main
from asr.corpora.tones import ToneConfig, render_tones
from asr.inference.recognizer import DEFAULT_MODEL
from asr.manifest import Utterance, write_manifest
from asr.metrics import error_counts

SAMPLE_MAX_WER = 0.4  # measured: 0.0625 (1 of 16, "walked" as "looked"), the shipped model + LM


@pytest.fixture(scope="module")
def recognizer():
    return asr.load_model(device="cpu")


def test_bundle_holds_model_lm_lexicon_and_settings_within_60_mb():
    sizes = folder_file_sizes(DEFAULT_MODEL)
    assert sizes.keys() >= MODEL_FOLDER_FILES
    assert sum(sizes.values()) <= 60 * 2**20


def test_load_model_without_a_path_decodes_with_the_bundled_lm(recognizer):
    options = recognizer.default_options
    settings = json.loads((DEFAULT_MODEL / "decoding.json").read_text())
    assert options.decoder == "beam"
    assert Path(options.lm_path) == DEFAULT_MODEL / "lm" / "lm.bin"
    assert Path(options.lexicon_path) == DEFAULT_MODEL / "lm" / "lexicon.txt"
    assert options.lm_weight == settings["lm_weight"]
    assert options.word_score == settings["word_score"]
    assert options.lexicon_words == settings["lexicon_words"] == 30_000


@pytest.mark.slow
def test_bundled_model_transcribes_the_sample_and_the_cli_agrees(recognizer):
    (result,) = recognizer.transcribe([SAMPLE])
    wer = error_counts([SAMPLE_TEXT], [result.raw_text], "word").rate
    assert wer <= SAMPLE_MAX_WER, result.raw_text
    command = [sys.executable, "-m", "asr", "transcribe", str(SAMPLE), "--device", "cpu"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == result.text  # issue 33: a capitalized, punctuated sentence
    assert_written(result.text, result.raw_text)
    out = subprocess.run([*command, "--raw"], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == result.raw_text


def _generated_files(folder: Path) -> list[Path]:
    """The sample, the sample at 8 kHz with noise, and tones: three decodings to compare."""
    rng = np.random.default_rng(0)
    noisy = resample(load_audio(SAMPLE), 16_000, 8_000)
    noisy = noisy + 0.01 * rng.standard_normal(len(noisy)).astype(np.float32)
    sf.write(folder / "noisy_8k.wav", noisy, 8_000)
    sf.write(folder / "tones.flac", render_tones("a bad cab", rng, ToneConfig()), 16_000)
    return [SAMPLE, folder / "noisy_8k.wav", folder / "tones.flac"]


def _report_hypotheses(report: Path) -> list[str]:
    """The HYP lines of an `asr evaluate` report.txt, alignment gaps (***) removed."""
    lines = [line for line in report.read_text().splitlines() if line.startswith("HYP:")]
    return [" ".join(w for w in line[4:].split() if set(w) != {"*"}) for line in lines]


@pytest.mark.slow
def test_cli_api_and_evaluate_give_identical_hypotheses(recognizer, tmp_path, capsys):
    """With no options anywhere, `asr transcribe`, `load_model().transcribe()` and `asr
    evaluate` decode with the same resolved options: identical hypotheses (evaluate's are
    the spoken words, the others' written by default, spoken with raw)."""
    files = _generated_files(tmp_path)
    transcripts = recognizer.transcribe(files)
    api, written = [r.raw_text for r in transcripts], [r.text for r in transcripts]
    assert main(["transcribe", *map(str, files)]) == 0
    cli_written = [line.split("\t", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert main(["transcribe", *map(str, files), "--raw"]) == 0
    cli = [line.split("\t", 1)[1] for line in capsys.readouterr().out.splitlines()]
    manifest = tmp_path / "set.jsonl"
    write_manifest(manifest, [Utterance(str(f), 1.0, SAMPLE_TEXT) for f in files])
    assert main(["evaluate", str(manifest), "--out-dir", str(tmp_path / "eval")]) == 0
    evaluated = _report_hypotheses(tmp_path / "eval" / "report.txt")
    assert api == cli == evaluated and written == cli_written != cli
    assert api[0] and recognizer.default_options.decoder == "beam"  # the bundled LM decided
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["decoding"] == replace(recognizer.default_options, raw=True).to_dict()
    from_python = asr.evaluate_manifest(recognizer, manifest)  # its default: the model's own
    assert from_python.words == asr.error_counts([SAMPLE_TEXT] * 3, api)
