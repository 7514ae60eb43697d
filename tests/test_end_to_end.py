"""Train a tiny model on generated utterances until it transcribes them exactly, then use it
through the CLI entry point, as a user would."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_written

from asr.cli import main
from asr.corpora.tones import make_tone_corpus
from asr.manifest import read_manifest

QUICKSTART = Path(__file__).resolve().parent.parent / "recipes" / "quickstart" / "config.toml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    manifest = make_tone_corpus(root / "tones", num_utterances=8, seed=3)
    # The quickstart recipe itself, pointed at this corpus: the recipe cannot rot.
    overrides = [f"data.train_manifest={manifest}", f"data.valid_manifest={manifest}"]
    args = ["train", "--config", str(QUICKSTART), "--exp-dir", str(root / "exp")]
    assert main([*args, *(x for o in overrides for x in ("--set", o))]) == 0
    return root, manifest


@pytest.mark.slow
def test_training_converges_and_writes_experiment(trained):
    root, _ = trained
    exp = root / "exp"
    for name in ("config.toml", "train.log", "last.pt", "best.pt", "model.pt"):
        assert (exp / name).is_file(), name
    last = json.loads((exp / "train.log").read_text().splitlines()[-1])
    assert last["valid_wer"] == 0.0 and last["valid_cer"] == 0.0


@pytest.mark.slow
def test_transcribe_cli(trained, capsys):
    root, manifest = trained
    utterances = read_manifest(manifest)[:3]
    capsys.readouterr()
    args = ["transcribe", *(u.audio_filepath for u in utterances), "--model", str(root / "exp")]
    assert main([*args, "--output-format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["raw_text"] for r in records] == [u.text for u in utterances]
    for record in records:
        assert_written(record["text"], record["raw_text"])
    assert main(args[:2] + args[-2:]) == 0  # one file: the transcript alone, written
    assert_written(capsys.readouterr().out.strip(), utterances[0].text)
    assert main([*args[:2], *args[-2:], "--raw"]) == 0  # the spoken words
    assert capsys.readouterr().out.strip() == utterances[0].text


@pytest.mark.slow
def test_evaluate_cli(trained, capsys):
    root, manifest = trained
    out_dir = root / "eval"
    capsys.readouterr()
    args = ["evaluate", str(manifest), "--model", str(root / "exp" / "model.pt")]
    assert main([*args, "--out-dir", str(out_dir)]) == 0
    assert "WER 0.00%" in capsys.readouterr().out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["utterances"] == 8 and summary["wer"] == 0.0
    assert (out_dir / "report.txt").read_text().count("REF:") == 8


def test_cli_errors_are_clear(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    audio = tmp_path / "x.wav"
    audio.write_bytes(b"not audio either")
    assert main(["transcribe", str(audio), "--model", str(junk)]) == 2
    assert "junk.pt: not a readable asr checkpoint" in capsys.readouterr().err
    assert main(["transcribe", str(tmp_path / "missing.wav"), "--model", str(junk)]) == 2
    assert "missing.wav: no such file or folder" in capsys.readouterr().err


def test_python_m_asr_help():
    out = subprocess.run(
        [sys.executable, "-m", "asr", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--config" in out and "--set" in out and "--exp-dir" in out


def test_user_errors_share_one_base_and_carry_their_exit_code():
    from asr.audio import AudioError
    from asr.errors import exit_code, user_message
    from asr.training.loop import NonFiniteLossError
    from asr.usererror import UserError

    assert issubclass(AudioError, UserError) and issubclass(AudioError, ValueError)
    assert (exit_code(AudioError("a.wav: bad")), user_message(AudioError("a.wav: bad"))) == (
        2,
        "a.wav: bad",
    )
    assert exit_code(NonFiniteLossError("diverged")) == 1  # the run failed: exit 1
    assert user_message(ValueError("a bug")) is None  # not the user's: a traceback
