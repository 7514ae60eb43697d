"""`asr lm`, `asr decode tune` and `asr transcribe --decoder beam --output-format ...` end to
end, on a tiny untrained model (the plumbing, not the accuracy, is under test here)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import needs_kenlm, parse_srt, parse_vtt

from asr.checkpoint import inference_payload, save_checkpoint
from asr.cli import main
from asr.config import to_dict
from asr.corpora.tones import ToneConfig, random_sentence, render_tones
from asr.manifest import Utterance, write_manifest
from asr.training.loop import ExperimentConfig

SR = 16_000


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny random checkpoint, a tone dev set, a 20 s recording and book text."""
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    cfg = ExperimentConfig()
    cfg.model.num_layers, cfg.model.hidden_size, cfg.model.conv_channels = 1, 16, 4
    from asr.model import AcousticModel

    model = AcousticModel(cfg.model, cfg.features.n_mels, 29)
    from asr.text import Vocabulary

    vocab, weights = Vocabulary.english().to_list(), model.state_dict()
    payload = inference_payload(to_dict(cfg), vocab, torch.zeros(80), torch.ones(80), weights)
    save_checkpoint(root / "model" / "model.pt", payload)
    rng, text_rng = np.random.default_rng(0), random.Random(0)
    utterances, sentences = [], []
    for i in range(6):
        text = random_sentence(text_rng)
        sentences.append(text)
        path = root / f"utt{i}.wav"
        sf.write(path, render_tones(text, rng, ToneConfig()), SR)
        utterances.append(Utterance(str(path), sf.info(path).duration, text))
    write_manifest(root / "dev.jsonl", utterances)
    long = np.concatenate([render_tones(s, rng, ToneConfig()) for s in sentences * 3])
    sf.write(root / "long.wav", long, SR)
    books = root / "books"
    books.mkdir()
    (books / "pg1.txt").write_text("The cat sat on the mat. A dog ran!\n\nWe go up. " * 5)
    (books / "pg2.txt").write_text("Held-out book text.\n")
    return root


def test_lm_prepare_text(workspace, capsys):
    out = workspace / "text.txt"
    assert main(["lm", "prepare-text", str(workspace / "books"), "--out", str(out),
                 "--exclude-ids", "2"]) == 0  # fmt: skip
    lines = out.read_text().splitlines()
    assert lines[:3] == ["the cat sat on the mat", "a dog ran", "we go up"]
    assert "held" not in out.read_text()
    assert "1 excluded by id" in capsys.readouterr().out


def test_lm_build_error_names_the_script(workspace, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(workspace))
    code = main(["lm", "build", "--text", str(workspace / "text.txt"), "--out", "x"])
    assert code == 2 and "scripts/install_kenlm.sh" in capsys.readouterr().err


@needs_kenlm
def test_build_tune_and_transcribe_subtitles(workspace, capsys):
    lm_dir = workspace / "model" / "lm"
    assert main(["lm", "build", "--text", str(workspace / "text.txt"), "--order", "3",
                 "--out", str(lm_dir)]) == 0  # fmt: skip
    model = str(workspace / "model")
    args = ["decode", "tune", model, str(workspace / "dev.jsonl"), "--lm", str(lm_dir / "lm.bin")]
    assert main([*args, "--lm-weights", "0.5", "1", "--word-scores", "3", "6"]) == 0
    table = capsys.readouterr().out
    assert table.count("\n") >= 6 and "best: lm_weight" in table
    saved = json.loads((workspace / "model" / "decoding.json").read_text())
    assert saved["decoder"] == "beam" and saved["lm_path"] == "lm/lm.bin"
    assert saved["word_score"] in (3.0, 6.0)

    # No decoding flags: the model folder's decoding.json decides (beam with its LM).
    out_dir = workspace / "out"
    for fmt in ("srt", "vtt", "json"):
        argv = ["transcribe", str(workspace / "long.wav"), "--model", model,
                "--output-format", fmt, "--output-dir", str(out_dir), "--max-seconds", "8",
                "--word-score", "6"]  # fmt: skip
        assert main(argv) == 0
    duration = sf.info(workspace / "long.wav").duration
    record = json.loads((out_dir / "long.json").read_text())
    assert record["options"]["decoder"] == "beam"
    assert record["options"]["lm_path"].endswith("lm.bin")
    assert record["options"]["word_score"] == 6.0
    assert record["words"], "a word score of 6 makes the search emit words"
    assert " ".join(w["word"] for w in record["words"]) == record["raw_text"]  # spoken
    starts = [w["start"] for w in record["words"]]
    assert starts == sorted(starts) and starts[0] >= 0 and record["words"][-1]["end"] <= duration
    srt = parse_srt((out_dir / "long.srt").read_text())
    vtt = parse_vtt((out_dir / "long.vtt").read_text())
    assert srt == vtt and srt and srt[-1][1] <= duration + 1e-3
    assert " ".join(c[2] for c in srt) == record["text"]  # the written words
    assert record["text"] != record["raw_text"] and record["text"][:1].isupper()


def test_bad_decoding_flag_is_a_clear_error(workspace, capsys):
    argv = ["transcribe", str(workspace / "utt0.wav"), "--model", str(workspace / "model"),
            "--decoder", "beam", "--lm", str(workspace / "missing.bin")]  # fmt: skip
    assert main(argv) == 2
    assert "missing.bin" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags", [["--beam-size-token", "-1"], ["--lm-weight", "nan"], ["--word-score", "inf"]]
)
def test_bad_numbers_are_one_line_errors(flags, capsys):
    from helpers import SAMPLE

    assert main(["transcribe", str(SAMPLE), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asr: error: decoding options: decoding.") and "Traceback" not in err


def test_hotwords_greedy_decoding_cannot_use_are_refused(workspace, capsys):
    """Greedy decoding would drop them without a word (the server answers 400)."""
    argv = ["transcribe", str(workspace / "utt0.wav"), "--model", str(workspace / "model")]
    assert main([*argv, "--decoder", "greedy", "--hotwords", "vexation"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asr: error: hotwords: hotwords need the lexicon beam search")
    assert "Traceback" not in err
