"""Recipes run stage by stage on tiny corpora built here, so that they cannot rot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FAKE_FLITE, make_librispeech, needs_kenlm, write_tone

from asr.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]
TINY_TRAINING = (
    "model.num_layers=1 model.hidden_size=16 model.conv_channels=4 optim.epochs=1 "
    "optim.warmup_steps=1 data.batch_size=4 data.num_workers=0 train.device=cpu "
    "train.precision=fp32 train.stats_utterances=4"
)


def run_recipe(name: str, env: dict[str, str]) -> str:
    full_env = {**os.environ, "ASR": f"{sys.executable} -m asr", "CHECK_JOBS": "1", **env}
    proc = subprocess.run(
        ["bash", f"recipes/{name}/run.sh"], cwd=REPO, env=full_env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_mini_librispeech_all_stages(tmp_path):
    shared = tmp_path / "mini"
    make_librispeech(shared, "train", {("1", "10"): [1.5] * 6, ("2", "20"): [1.5] * 4})
    make_librispeech(shared, "dev", {("3", "30"): [1.5] * 3})
    manifests, exp = tmp_path / "manifests", tmp_path / "exp"
    out = run_recipe(
        "mini_librispeech",
        {"SHARED": str(shared), "MANIFESTS": str(manifests), "EXP": str(exp),
         "TRAIN_SET": TINY_TRAINING, "HELD_OUT": "2"},
    )  # fmt: skip
    assert len(read_manifest(manifests / "train.clean.jsonl")) == 10
    assert len(read_manifest(manifests / "split" / "held_out.jsonl")) == 2
    assert len(read_manifest(manifests / "dev.clean.jsonl")) == 3
    assert (exp / "model.pt").is_file()
    summary = json.loads((exp / "eval_dev/summary.json").read_text())
    assert summary["utterances"] == 3  # every dev utterance scored, whatever the model says
    assert f"WER {100 * summary['wer']:.2f}%" in out


@needs_kenlm
def test_default_model_all_stages(tmp_path):
    """recipes/default_model/run.sh, data to model folder to reports, on a tiny corpus:
    N (CTC-CRF), its fine-tuning O, a word LM, O's folder tuned on the held-out speaker,
    then N and O on every speaker, shipped with O's decoding weights."""
    shared = tmp_path / "mini"
    for speaker in ("1", "2", "3", "4"):
        make_librispeech(shared, "train", {(speaker, "10"): [1.5] * 3})
    make_librispeech(shared, "dev", {("5", "50"): [1.5] * 2})
    books = tmp_path / "books"
    books.mkdir()
    (books / "pg1.txt").write_text("Words number one. Words number two, number three.\n" * 20)
    manifests, exp = tmp_path / "manifests", tmp_path / "exp"
    o_out, out = tmp_path / "o_folder", tmp_path / "folder"
    tiny = f"{TINY_TRAINING} model.aux_layer=0 train.average_last=1 data.early_batch_epochs=0"
    run_recipe(
        "default_model",
        {"SHARED": str(shared), "GUTENBERG": str(books), "MANIFESTS": str(manifests),
         "EXP": str(exp), "O_OUT": str(o_out), "OUT": str(out), "SPEAKERS": "4",
         "TRAIN_SET": tiny,
         "LM_BUILD": "--order 2", "LM_WEIGHTS": "1", "WORD_SCORES": "0", "STOP_STAGE": "9"},
    )  # fmt: skip
    assert len(read_manifest(manifests / "mini_spk" / "held_out.jsonl")) == 3
    crf = json.loads((exp / "ft_crf_n_utt" / "train.log").read_text().splitlines()[-1])
    assert crf["epoch"] == 1 and crf["train_loss"] > 0
    config = (exp / "ft_crf_n_utt" / "config.toml").read_text()
    assert 'loss = "ctc_crf"' in config and 'normalization = "utterance"' in config
    assert 'loss = "ctc_crf"' in (exp / "dm_crf" / "config.toml").read_text()
    decoding = json.loads((o_out / "decoding.json").read_text())
    assert (decoding["decoder"], decoding["lexicon_words"], decoding["lm_weight"]) == (
        "beam",
        30000,
        1,
    )
    assert json.loads((out / "decoding.json").read_text()) == decoding
    every_speaker = f'train_manifest = "{manifests / "mini" / "train.jsonl"}"'
    for run in ("dm_crf_all22", "ft_crf_all22_utt"):
        assert every_speaker in (exp / run / "config.toml").read_text()
    for split in ("valid", "dev"):
        summary = json.loads((exp / "eval_o" / f"{split}-lm" / "summary.json").read_text())
        assert summary["utterances"] == (3 if split == "valid" else 2)
        assert summary["decoding"]["decoder"] == "beam"
    shipped = json.loads((exp / "eval_all22" / "dev-lm" / "summary.json").read_text())
    assert shipped["utterances"] == 2 and shipped["decoding"]["lm_weight"] == 1


def test_default_model_speechocean762_stage(tmp_path):
    """Stage 10: a Kaldi folder in speechocean762's layout comes in through `asr data prepare
    kaldi`; its validation speakers follow the committed rule (ids sorted, every 6th from the
    first); the mixes add its training speakers to Mini LibriSpeech's 22 (twice for Q2)."""
    shared = tmp_path / "mini"
    make_librispeech(shared, "train", {("1", "10"): [1.5] * 2, ("2", "20"): [1.5]})
    make_librispeech(shared, "dev", {("5", "50"): [1.5]})
    so762 = tmp_path / "so762"
    data = so762 / "train"
    data.mkdir(parents=True)
    speakers = [f"{n:04d}" for n in (9, 3, 1, 7, 4, 8, 2, 6, 5)]  # unsorted, as a corpus may be
    scp, text, utt2spk = [], [], []
    for speaker in speakers:
        utt = f"{speaker}0001"
        write_tone(so762 / "WAVE" / f"SPEAKER{speaker}" / f"{utt}.wav", 1.0)
        scp.append(f"{utt}\tWAVE/SPEAKER{speaker}/{utt}.wav")
        text.append(f"{utt}\tWE CALL IT BEAR")
        utt2spk.append(f"{utt} {speaker}")
    (data / "wav.scp").write_text("\n".join(scp) + "\n")
    (data / "text").write_text("\n".join(text) + "\n")
    (data / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    (data / "spk2gender").write_text("".join(f"{s} f\n" for s in speakers))
    manifests = tmp_path / "manifests"
    env = {"SHARED": str(shared), "SO762": str(data), "MANIFESTS": str(manifests),
           "EXP": str(tmp_path / "exp"), "SPEAKERS": "1"}  # fmt: skip
    run_recipe("default_model", {**env, "STAGE": "1", "STOP_STAGE": "1"})
    run_recipe("default_model", {**env, "STAGE": "10", "STOP_STAGE": "10"})
    held_out = read_manifest(manifests / "so762_spk" / "held_out.jsonl")
    assert sorted(u.speaker for u in held_out) == ["0001", "0007"]  # sorted: 1st and 7th
    train = read_manifest(manifests / "so762_spk" / "train.jsonl")
    assert len(train) == 7 and held_out[0].text == "WE CALL IT BEAR"
    mini = read_manifest(manifests / "mini" / "train.jsonl")
    assert len(read_manifest(manifests / "mix" / "train.jsonl")) == len(mini) + 7
    assert len(read_manifest(manifests / "mix2" / "train.jsonl")) == len(mini) + 14


def test_librispeech_prepare_stage_on_fake_960h_layout(tmp_path):
    corpora = tmp_path / "corpora"
    layout = corpora / "LibriSpeech"
    make_librispeech(layout, "train-clean-100", {("1", "10"): [1.5, 1.6]})
    make_librispeech(layout, "train-clean-360", {("2", "20"): [1.5]})
    make_librispeech(layout, "train-other-500", {("4", "40"): [1.5]})
    for subset in ("dev-clean", "dev-other", "test-clean", "test-other"):
        make_librispeech(layout, subset, {("3", "30"): [1.5]})
    manifests = tmp_path / "manifests"
    run_recipe(
        "librispeech",
        {"CORPORA": str(corpora), "MANIFESTS": str(manifests), "DOWNLOAD": "",
         "STOP_STAGE": "1"},
    )  # fmt: skip
    train = read_manifest(manifests / "train_960.jsonl")
    assert sorted(u.speaker for u in train) == ["1", "1", "2", "4"]
    for subset in ("dev-clean", "dev-other", "test-clean", "test-other"):
        assert len(read_manifest(manifests / f"{subset}.jsonl")) == 1


@pytest.fixture
def flite_on_path(tmp_path) -> dict[str, str]:
    """The real flite when installed, else the fake one from test_synth."""
    if shutil.which("flite"):
        return {}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "flite"
    script.write_text(FAKE_FLITE.format(python=sys.executable))
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_synthetic_all_stages(tmp_path, flite_on_path):
    texts = {}
    for split, topic in (("train", "river"), ("dev", "mountain"), ("test", "forest")):
        path = tmp_path / f"{split}.txt"
        path.write_text(
            " ".join(f"The {topic} number {i} runs past the old town today." for i in range(12))
        )
        texts[split] = str(path)
    data, exp = tmp_path / "synth", tmp_path / "exp"
    run_recipe(
        "synthetic",
        {**flite_on_path, "DATA": str(data), "EXP": str(exp), "NUM_TRAIN": "8",
         "NUM_DEV": "3", "NUM_TEST": "3", "JOBS": "2", "TRAIN_TEXT": texts["train"],
         "DEV_TEXT": texts["dev"], "TEST_TEXT": texts["test"],
         "TRAIN_VOICES": "flite:kal16 flite:awb", "TEST_VOICES": "flite:slt",
         "TRAIN_SET": TINY_TRAINING},
    )  # fmt: skip
    train = read_manifest(data / "train/clean.jsonl")
    test = read_manifest(data / "test/clean.jsonl")
    assert len(train) == 8 and len(test) == 3
    assert {u.speaker for u in test} == {"flite:slt"}
    assert not {u.speaker for u in train} & {u.speaker for u in test}
    assert (exp / "eval_test/summary.json").is_file()
