"""Bad input never costs work (issue 13): every failure is named with its reason, what was
good is kept, and nothing is silently wrong.

`CASES` is the table: a bad input, the command run on it, the exit status and the words
the message must hold. The tests after it cover what a row cannot: batches that keep their
good files, output paths, training folders, checkpoints written on a full disk. A seeded
fuzz test mutates real audio files and manifests and asserts that the CLI never ends in a
traceback or hangs. `benchmarks/bad_input.py` runs the same table through the command line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import random
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import needs_kenlm

from asr.checkpoint import CheckpointError, inference_payload, save_checkpoint
from asr.cli import main
from asr.config import to_dict
from asr.corpora.tones import ToneConfig, make_tone_corpus, random_sentence, render_tones
from asr.manifest import Utterance, write_manifest
from asr.model import AcousticModel
from asr.text import Vocabulary
from asr.training.loop import ExperimentConfig

SR = 16_000


def tiny_model(folder: Path) -> Path:
    """An untrained 1-layer model folder (model.pt): the plumbing is under test."""
    torch.manual_seed(0)
    cfg = ExperimentConfig()
    cfg.model.num_layers, cfg.model.hidden_size, cfg.model.conv_channels = 1, 16, 4
    model = AcousticModel(cfg.model, cfg.features.n_mels, 29)
    vocab = Vocabulary.english().to_list()
    payload = inference_payload(
        to_dict(cfg), vocab, torch.zeros(80), torch.ones(80), model.state_dict()
    )
    save_checkpoint(folder / "model.pt", payload)
    return folder


def make_workspace(root: Path) -> Path:
    """Good and bad audio, manifests, model folders and a training config under `root`."""
    rng, text_rng = np.random.default_rng(0), random.Random(0)
    tiny_model(root / "model")
    good = root / "good"
    good.mkdir()
    utterances = []
    for i in range(3):
        text = random_sentence(text_rng)
        path = good / f"utt{i}.wav"
        sf.write(path, render_tones(text, rng, ToneConfig()), SR)
        utterances.append(Utterance(str(path), sf.info(path).duration, text))
    write_manifest(root / "good.jsonl", utterances)
    wave = render_tones("a cat", rng, ToneConfig()).astype(np.float32)
    bad = root / "bad"
    bad.mkdir()
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        broken = wave.copy()
        broken[len(broken) // 2] = value
        sf.write(bad / f"{name}.wav", broken, SR, subtype="FLOAT")
    data = (good / "utt0.wav").read_bytes()
    (bad / "truncated.wav").write_bytes(data[: len(data) // 2])  # cut mid-data
    (bad / "empty.wav").write_bytes(b"")
    (bad / "random.wav").write_bytes(random.Random(1).randbytes(3000))
    write_manifest(root / "nan.jsonl", [Utterance(str(bad / "nan.wav"), 1.0, "a cat")])
    (root / "empty.jsonl").write_text("")
    good_line = json.loads((root / "good.jsonl").read_text().splitlines()[0])
    for name, duration in (("dur_nan", "NaN"), ("dur_inf", "Infinity")):  # what json.dumps writes
        text = json.dumps(good_line).replace(
            f'"duration": {good_line["duration"]}', f'"duration": {duration}'
        )
        (root / f"{name}.jsonl").write_text(text + "\n")
    line = json.dumps({"audio_filepath": str(good / "utt0.wav"), "duration": 1.0, "text": "x"})
    (root / "latin1.jsonl").write_bytes(line.encode()[:-2] + 'é"}\n'.encode("latin-1"))
    (root / "a_file").write_text("not a folder")
    _write_lying_audio(bad, wave)
    (root / "lm.txt").write_text("the cat sat on the mat\n" * 40)
    _write_json_at_its_limits(root, good_line)
    for name, content in {
        "decoding_empty": "",
        "decoding_truncated": '{"decoder": "be',
        "decoding_mistyped": '{"decoder": "beam", "lm_weight": "two"}',
        "decoding_list": "[1, 2]",
        "decoding_binary": "\udcff\udcfe{",  # bytes 0xff 0xfe: not UTF-8
    }.items():
        tiny_model(root / name)
        (root / name / "decoding.json").write_bytes(content.encode("utf-8", "surrogateescape"))
    lm = tiny_model(root / "model_bad_lm") / "lm"
    lm.mkdir()
    (lm / "lm.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\0" + b"x" * 40)
    (lm / "lexicon.txt").write_text("cat c a t |\n")
    configs = (
        ("cfg_empty", "empty.jsonl"),
        ("cfg_latin1", "latin1.jsonl"),
        ("cfg_nan", "nan.jsonl"),
    )
    for name, manifest in configs:
        (root / f"{name}.toml").write_text(
            f'[data]\ntrain_manifest = "{root / manifest}"\nvalid_manifest = ""\n'
            "[model]\nnum_layers = 1\nhidden_size = 8\nconv_channels = 4\n"
            '[train]\ndevice = "cpu"\nprecision = "fp32"\ntensorboard = false\n'
        )
    trained = root / "trained_exp"
    trained.mkdir()
    (trained / "model.pt").write_bytes(b"a trained model")
    return root


def _write_lying_audio(bad: Path, wave: np.ndarray) -> None:
    """MP3s whose decoder yields less than the header says, a float WAV scaled like ints."""
    sf.write(bad / "whole.mp3", np.tile(wave, 4), SR, format="MP3")
    data = (bad / "whole.mp3").read_bytes()
    (bad / "cut.mp3").write_bytes(data[: len(data) // 3])
    liar = bytearray(data)
    at = liar.index(b"Xing") + 8  # the Xing header's frame count
    liar[at : at + 4] = (600 * SR // 576).to_bytes(4, "big")  # claims 600 s
    (bad / "liar.mp3").write_bytes(bytes(liar))
    write_manifest(bad.parent / "liar.jsonl", [Utterance(str(bad / "liar.mp3"), 600.0, "a cat")])
    sf.write(bad / "int_scaled.wav", wave * 32767, SR, subtype="FLOAT")


def _write_json_at_its_limits(root: Path, good_line: dict) -> None:
    """Manifests and decoding.json files whose JSON Python parses with other errors than
    JSONDecodeError (or into numbers that overflow later)."""
    limits = {
        "digits401": '{"duration": 1%s}' % ("0" * 400),  # an OverflowError as a float
        "digits5001": '{"duration": 1%s}' % ("0" * 5000),  # a ValueError in json.loads
        "deep": "[" * 200_000 + "]" * 200_000,  # a RecursionError in json.loads
    }
    for name, text in limits.items():
        line = json.dumps(good_line)
        if name != "deep":
            line = line.replace(f'"duration": {good_line["duration"]}', text[1:-1])
        else:
            line = text
        (root / f"{name}.jsonl").write_text(line + "\n")
        tiny_model(root / f"decoding_{name}")
        text = text.replace("duration", "beam_size")
        (root / f"decoding_{name}" / "decoding.json").write_text(text)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("bad_input"))


@dataclass(frozen=True)
class Case:
    name: str  # the bad input
    argv: str  # the command; {ws} is the workspace folder
    exit: int  # expected exit status
    words: tuple[str, ...]  # the messages hold each (case-insensitive)


M = "--model {ws}/model --quiet"
CASES = [
    Case("NaN samples", f"transcribe {{ws}}/bad/nan.wav {M}", 1, ("nan.wav", "NaN")),
    Case("infinite samples", f"transcribe {{ws}}/bad/inf.wav {M}", 1, ("inf.wav", "infinite")),
    Case("WAV cut mid-data", f"transcribe {{ws}}/bad/truncated.wav {M}", 1, ("truncated",)),
    Case("empty file", f"transcribe {{ws}}/bad/empty.wav {M}", 1, ("empty.wav", "not a readable")),
    Case("random bytes", f"transcribe {{ws}}/bad/random.wav {M}", 1, ("random.wav",)),
    Case("missing file", f"transcribe {{ws}}/nope.wav {M}", 2, ("nope.wav", "no such")),
    Case(
        "output folder is a file",
        f"transcribe {{ws}}/good {M} --output-dir {{ws}}/a_file",
        2,
        ("a_file", "is a file"),
    ),
    Case(
        "output folder inside a file",
        f"transcribe {{ws}}/good {M} --output-dir {{ws}}/a_file/sub",
        2,
        ("a_file", "is a file"),
    ),
    Case(
        "decoding.json empty",
        "transcribe {ws}/good --model {ws}/decoding_empty",
        2,
        ("decoding.json",),
    ),
    Case(
        "decoding.json truncated",
        "transcribe {ws}/good --model {ws}/decoding_truncated --decoder greedy",
        2,
        ("decoding.json", "not valid json"),
    ),
    Case(
        "decoding.json mistyped",
        "transcribe {ws}/good --model {ws}/decoding_mistyped",
        2,
        ("decoding.json", "lm_weight", "'two'"),
    ),
    Case(
        "decoding.json a list",
        "transcribe {ws}/good --model {ws}/decoding_list",
        2,
        ("json object",),
    ),
    Case(
        "decoding.json not UTF-8",
        "transcribe {ws}/good --model {ws}/decoding_binary --decoder greedy",
        2,
        ("decoding.json",),
    ),
    Case(
        "damaged lm.bin", "transcribe {ws}/good --model {ws}/model_bad_lm", 2, ("lm.bin", "kenlm")
    ),
    Case("NaN audio in a manifest", "data check {ws}/nan.jsonl", 1, ("nonfinite", "nan.wav")),
    Case(
        "non-UTF-8 manifest (check)", "data check {ws}/latin1.jsonl", 2, ("latin1.jsonl:1", "utf-8")
    ),
    Case(
        "non-UTF-8 manifest (evaluate)",
        "evaluate {ws}/latin1.jsonl --model {ws}/model",
        2,
        ("latin1.jsonl:1", "utf-8"),
    ),
    Case(
        "report folder is a file (evaluate)",
        "evaluate {ws}/good.jsonl --model {ws}/model --out-dir {ws}/a_file",
        2,
        ("a_file", "is a file"),
    ),
    Case("manifest is a folder", "evaluate {ws}/good --model {ws}/model", 2, ("a folder",)),
    Case(
        "empty manifest (evaluate)",
        "evaluate {ws}/empty.jsonl --model {ws}/model",
        2,
        ("no utterances",),
    ),
    Case(
        "non-UTF-8 manifest (train)",
        "train --config {ws}/cfg_latin1.toml --exp-dir {ws}/exp_latin1",
        2,
        ("latin1.jsonl:1", "utf-8"),
    ),
    Case(
        "empty manifest (train)",
        "train --config {ws}/cfg_empty.toml --exp-dir {ws}/exp_empty",
        2,
        ("empty.jsonl", "no utterances"),
    ),
    Case(
        "NaN audio in training",
        "train --config {ws}/cfg_nan.toml --exp-dir {ws}/exp_nan --set data.num_workers=0",
        2,
        ("nan.wav", "NaN"),
    ),
    Case(
        "beam_size_token -1",
        f"transcribe {{ws}}/good {M} --beam-size-token -1",
        2,
        ("beam_size_token",),
    ),
    Case("lm_weight NaN", f"transcribe {{ws}}/good {M} --lm-weight nan", 2, ("lm_weight", "nan")),
    Case("word_score inf", f"transcribe {{ws}}/good {M} --word-score inf", 2, ("word_score",)),
    Case("beam of 10^9", f"transcribe {{ws}}/good {M} --beam-size 1000000000", 2, ("beam_size",)),
    Case("--batch-size 0", f"transcribe {{ws}}/good {M} --batch-size 0", 2, ("batch-size", ">= 1")),
    Case("--batch-size -1", f"transcribe {{ws}}/good {M} --batch-size -1", 2, ("batch-size",)),
    Case(
        "--device bogus",
        f"transcribe {{ws}}/good {M} --runtime torch --device bogus",
        2,
        ("bogus",),
    ),
    Case(
        "data.batch_size=0",
        "train --config {ws}/cfg_empty.toml --exp-dir {ws}/exp_b0 --set data.batch_size=0",
        2,
        ("data.batch_size must be >= 1",),
    ),
    Case(
        "optim.lr=nan",
        "train --config {ws}/cfg_empty.toml --exp-dir {ws}/exp_nanlr --set optim.lr=nan",
        2,
        ("optim.lr", "nan"),
    ),
    Case("average --last 0", "average {ws}/trained_exp --last 0", 2, ("--last", ">= 1")),
    Case(
        "split: more held out than exist",
        "data split {ws}/good.jsonl --held-out 99 --out-dir {ws}/split99",
        2,
        ("good.jsonl", "cannot hold out 99"),
    ),
    Case(
        "split: speakers of a manifest without any",
        "data split {ws}/good.jsonl --speakers 99 --out-dir {ws}/split_spk",
        2,
        ("good.jsonl", "without a speaker"),
    ),
    Case(
        "duration NaN (check)",
        "data check {ws}/dur_nan.jsonl",
        1,
        ("dur_nan.jsonl:line 1", "duration", "finite"),
    ),
    Case(
        "duration Infinity (evaluate)",
        "evaluate {ws}/dur_inf.jsonl --model {ws}/model",
        2,
        ("dur_inf.jsonl:1", "finite"),
    ),
    Case("MP3 cut short", f"transcribe {{ws}}/bad/cut.mp3 {M}", 1, ("cut.mp3", "truncated")),
    Case(
        "MP3 header claims 600 s",
        f"transcribe {{ws}}/bad/liar.mp3 {M}",
        1,
        ("liar.mp3", "truncated"),
    ),
    Case("MP3 header claims 600 s (check)", "data check {ws}/liar.jsonl", 1, ("truncated",)),
    Case(
        "float WAV scaled like 16-bit",
        f"transcribe {{ws}}/bad/int_scaled.wav {M}",
        1,
        ("int_scaled.wav", "16-bit"),
    ),
    *[
        Case(
            f"manifest: {what}",
            f"evaluate {{ws}}/{name}.jsonl --model {{ws}}/model",
            2,
            (f"{name}.jsonl:1", words),
        )
        for name, what, words in (
            ("digits401", "a 401-digit duration", "401 digits"),
            ("digits5001", "a 5,001-digit duration", "5001 digits"),
            ("deep", "nested 200,000 deep", "nested 200000 deep"),
        )
    ],
    Case("manifest nested 200,000 deep (check)", "data check {ws}/deep.jsonl", 1, ("deep",)),
    *[
        Case(
            f"decoding.json: {name}",
            f"transcribe {{ws}}/good --model {{ws}}/decoding_{name}",
            2,
            ("decoding.json", words),
        )
        for name, words in (("digits401", "401 digits"), ("deep", "nested 200000 deep"))
    ],
    Case(
        "--set with 5,001 digits",
        "train --config {ws}/cfg_empty.toml --exp-dir {ws}/exp_digits --set optim.lr=1%s"
        % ("0" * 5000),
        2,
        ("optim.lr", "5001 digits"),
    ),
    *[
        Case(
            f"lm build {flag} {value}",
            f"lm build --text {{ws}}/lm.txt --out {{ws}}/lm_bad {flag} {value}",
            2,
            words,
        )
        for flag, value, words in (
            ("--order", "1000", ("--order must be 1-6", "1000")),  # lmplz spun for minutes
            ("--order", "7", ("--order must be 1-6",)),  # build_binary failed after lmplz
            ("--vocab-size", "0", ("--vocab-size must be >= 1",)),  # exit 0, empty lexicon
            ("--memory", "1", ("--memory '1'", "at least 32M")),
            ("--memory", "250%", ("percentage",)),
            ("--prune", "-1", ("--prune", "[-1]")),
            ("--prune", "0 1 0", ("never decrease",)),
            ("--quantize", "99", ("--quantize", "25 bits")),
        )
    ],
    *[
        Case(
            f"decode tune {flag} {value}",
            f"decode tune {{ws}}/model_bad_lm {{ws}}/good.jsonl {flag} {value} --no-save",
            2,
            (field,),
        )
        for flag, value, field in (
            ("--lm-weights", "1 nan", "lm_weight"),
            ("--lm-weights", "-1", "lm_weight"),
            ("--lm-weights", "1e309", "lm_weight"),
            ("--word-scores", "inf", "word_score"),
        )
    ],
    Case("--max-seconds nan", f"transcribe {{ws}}/good {M} --max-seconds nan", 2, ("max_seconds",)),
    Case("--max-seconds -1", f"transcribe {{ws}}/good {M} --max-seconds -1", 2, ("max_seconds",)),
    Case(
        "data check --silence-dbfs nan",
        "data check {ws}/good.jsonl --silence-dbfs nan",
        2,
        ("--silence-dbfs", "nan"),
    ),
    Case(
        "data check --duration-tolerance inf",
        "data check {ws}/good.jsonl --duration-tolerance inf",
        2,
        ("--duration-tolerance",),
    ),
    Case("data check --jobs 0", "data check {ws}/good.jsonl --jobs 0", 2, ("--jobs",)),
    *[
        Case(
            f"data prepare {flags}",
            f"data prepare librispeech --root {{ws}} --out {{ws}}/prepared {flags}",
            2,
            words,
        )
        for flags, words in (
            ("--min-duration nan", ("--min-duration", "nan")),
            ("--max-duration nan", ("--max-duration", "nan")),
            ("--min-duration -1", ("--min-duration",)),
            ("--min-duration 5 --max-duration 1", ("--min-duration", "--max-duration")),
        )
    ],
    Case(
        "trained folder, no --resume",
        "train --config {ws}/cfg_empty.toml --exp-dir {ws}/trained_exp",
        2,
        ("already holds a trained model", "--resume", "--overwrite"),
    ),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """main() in-process: (exit status, stdout, stderr); an exception escaping is a traceback."""
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse
        code = exit.code if isinstance(exit.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_table(case, ws, capsys):
    code, out, err = run_cli(case.argv.format(ws=ws).split(), capsys)
    assert code == case.exit, err
    assert "Traceback" not in err
    for word in case.words:  # data check reports on stdout, the rest on stderr
        assert word.lower() in (out + err).lower(), (word, out, err)


def test_one_bad_file_costs_only_itself(ws, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for src in sorted((ws / "good").iterdir()):
        (folder / src.name).write_bytes(src.read_bytes())
    for name in ("nan.wav", "truncated.wav"):
        (folder / name).write_bytes((ws / "bad" / name).read_bytes())
    out_dir = tmp_path / "out"
    argv = ["transcribe", str(folder), "--model", str(ws / "model"), "--output-dir", str(out_dir)]
    code, out, err = run_cli(argv, capsys)
    assert code == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["utt0.txt", "utt1.txt", "utt2.txt"]
    assert "nan.wav: NaN or infinite samples" in err and "truncated.wav: truncated" in err
    assert "3 of 5 files transcribed, 2 failed" in err
    assert "wrote 3 txt files" in out
    code, out, err = run_cli([*argv[:-2], "--quiet"], capsys)  # to stdout: the good ones
    assert code == 1 and len(out.strip().splitlines()) == 3
    assert "transcribe:" not in err  # no progress bar with --quiet


def test_progress_bar_on_a_terminal_only(ws, monkeypatch, capsys):
    from asr.inference.batch import transcribe_files
    from asr.inference.recognizer import load_model

    recognizer = load_model(ws / "model")
    paths = sorted((ws / "good").iterdir())
    transcribe_files(recognizer, paths, recognizer.default_options, progress=None)
    assert "transcribe" not in capsys.readouterr().err  # stderr is not a terminal here
    report = transcribe_files(recognizer, paths, recognizer.default_options, progress=True)
    err = capsys.readouterr().err
    assert "transcribe" in err and "3/3" in err and "rtf=" in err and "audio=" in err
    assert report.audio_seconds > 0 and len(report.transcripts) == 3 and not report.failures


def test_same_stem_in_two_folders_mirrors(ws, tmp_path, capsys):
    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        (tmp_path / "in" / sub / "x.wav").write_bytes(
            (ws / "good" / f"utt{int(sub == 'b')}.wav").read_bytes()
        )
    out_dir = tmp_path / "out"
    argv = [
        "transcribe",
        str(tmp_path / "in"),
        "--model",
        str(ws / "model"),
        "--output-dir",
        str(out_dir),
    ]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "wrote 2 txt files" in out
    assert sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*.txt")) == [
        "a/x.txt",
        "b/x.txt",
    ]


def test_two_outputs_on_one_file_refused_before_work(ws, tmp_path, monkeypatch, capsys):
    import asr.inference.recognizer

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.wav").write_bytes((ws / "good" / "utt0.wav").read_bytes())
    sf.write(folder / "x.flac", sf.read(folder / "x.wav")[0], SR)
    monkeypatch.setattr(asr.inference.recognizer, "load_model", _no_work)
    argv = [
        "transcribe",
        str(folder),
        "--model",
        str(ws / "model"),
        "--output-dir",
        str(tmp_path / "o"),
    ]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "x.flac and" in err and "would both be written" in err


def test_an_output_path_that_is_a_folder_is_refused_before_work(ws, tmp_path, monkeypatch, capsys):
    import asr.inference.recognizer

    (tmp_path / "o" / "utt1.txt").mkdir(parents=True)  # in the way of the second file
    monkeypatch.setattr(asr.inference.recognizer, "load_model", _no_work)
    argv = ["transcribe", str(ws / "good"), "--model", str(ws / "model")]
    code, _, err = run_cli([*argv, "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 2 and "utt1.txt: cannot be written, it is a folder" in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["utt1.txt"]  # nothing written


def test_an_empty_lexicon_is_refused(tmp_path):
    from helpers import VOCAB

    from asr.decode import DecodingError, DecodingOptions, decode

    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "unspellable.txt").write_text("naïve n a ï v e |\n")
    for name, why in (("empty.txt", "no words"), ("unspellable.txt", "cannot emit")):
        opts = DecodingOptions(decoder="beam", lexicon_path=str(tmp_path / name))
        with pytest.raises(DecodingError, match=f"{name}: the lexicon cannot be searched: .*{why}"):
            decode(np.zeros((1, 4, len(VOCAB)), np.float32), np.array([4]), VOCAB, opts)


def test_read_only_output_folder_refused_before_work(ws, tmp_path, monkeypatch, capsys):
    import asr.inference.formats
    import asr.inference.recognizer

    read_only = tmp_path / "ro"
    read_only.mkdir()
    real = asr.inference.formats.os.access
    monkeypatch.setattr(
        asr.inference.formats.os, "access", lambda p, m: p != read_only and real(p, m)
    )
    # root passes chmod: simulate
    monkeypatch.setattr(asr.inference.recognizer, "load_model", _no_work)
    argv = [
        "transcribe",
        str(ws / "good"),
        "--model",
        str(ws / "model"),
        "--output-dir",
        str(read_only),
    ]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "permission denied" in err and str(read_only) in err


def _no_work(*args, **kwargs):
    raise AssertionError("the model was loaded: the check came after the work")


def test_permission_denied_is_named(ws, tmp_path, monkeypatch, capsys):
    import asr.audio
    import asr.files

    def system_error(path):
        raise RuntimeError("Error opening file: System error.")  # what libsndfile says

    monkeypatch.setattr(asr.audio.sf, "info", system_error)
    monkeypatch.setattr(asr.audio.os, "access", lambda p, m: False)
    code, _, err = run_cli(
        ["transcribe", str(ws / "good" / "utt0.wav"), "--model", str(ws / "model")], capsys
    )
    assert code == 1 and "utt0.wav: permission denied" in err
    monkeypatch.setattr(asr.files.os, "access", lambda p, m: False)
    code, _, err = run_cli(["transcribe", str(ws / "good"), "--model", str(ws / "model")], capsys)
    assert code == 2 and "permission denied" in err and "holds no" not in err


def test_os_errors_become_messages():
    from asr.errors import user_message

    full = OSError(errno.ENOSPC, "No space left on device", "/x/out.txt")
    assert user_message(full) == "/x/out.txt: no space left on the device (disk full)"
    denied = PermissionError(errno.EACCES, "Permission denied", "/x")
    assert user_message(denied) == "/x: permission denied"
    assert "not UTF-8" in user_message(_bad_utf8())
    assert user_message(KeyError("bug")) is None  # a bug keeps its traceback
    from asr.audio import AudioError

    worker = "Caught AudioError in DataLoader worker process 0.\nOriginal Traceback (most"
    worker += ' recent call last):\n  File "x.py", line 1\nasr.audio.AudioError: a.wav: NaN'
    assert user_message(AudioError(worker)) == "a.wav: NaN"  # as torch re-raises it


def _bad_utf8() -> UnicodeDecodeError:
    try:
        b"\xff".decode("utf-8")
    except UnicodeDecodeError as err:
        return err
    raise AssertionError


def test_streamed_reading_equals_whole_reading(tmp_path):
    from asr.audio import iter_audio_blocks, load_audio, resample

    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((44_100 * 3 + 17, 2))).astype(np.float32)
    sf.write(tmp_path / "s.wav", stereo, 44_100, subtype="FLOAT")
    whole = resample(stereo.mean(axis=1), 44_100, 16_000)
    blocks = list(iter_audio_blocks(tmp_path / "s.wav", 16_000, block_seconds=0.25))
    assert len(blocks) > 10  # read in pieces, not whole
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), whole, atol=1e-5)


def test_training_refuses_a_trained_folder_unless_told(ws, tmp_path):
    from asr.config import ConfigError
    from asr.training.loop import fit

    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "best.pt").write_bytes(b"x")
    cfg = ExperimentConfig()
    with pytest.raises(ConfigError, match="--overwrite"):
        fit(cfg, exp)
    assert (exp / "best.pt").read_bytes() == b"x"


def test_full_disk_while_checkpointing_names_the_way_out(tmp_path, monkeypatch):
    from asr.config import apply_overrides
    from asr.training.loop import fit

    manifest = make_tone_corpus(tmp_path / "tones", 6, seed=3)
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            f'data.train_manifest="{manifest}"',
            'data.valid_manifest=""',
            "data.num_workers=0",
            "model.num_layers=1",
            "model.hidden_size=8",
            "model.conv_channels=4",
            "optim.epochs=2",
            'train.device="cpu"',
            'train.precision="fp32"',
            "train.stats_utterances=4",
            "train.tensorboard=false",
        ],
    )
    real_save, saves = torch.save, []

    def save(obj, f):
        saves.append(obj.get("train_state", {}).get("epoch"))
        if len(saves) > 4:  # epoch 1's files are written, then the disk fills
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(CheckpointError) as caught:
        fit(cfg, tmp_path / "exp")
    message = str(caught.value)
    assert "disk is full" in message and "--resume" in message and "survive" in message
    monkeypatch.setattr(torch, "save", real_save)
    from asr.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "exp" / "last.pt")["train_state"]["epoch"] == 1
    assert not list((tmp_path / "exp").rglob("*.tmp"))


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "4M"):
    """A real file system of `size` (tmpfs) mounted at `folder`, for full-disk tests;
    the test is skipped where mounting is not allowed (not root, a container without
    CAP_SYS_ADMIN)."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    done = subprocess.run(mount, capture_output=True, text=True) if shutil.which("mount") else None
    if done is None or done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip() if done else 'no mount'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill_disk(folder: Path, leave: int = 0) -> None:
    """Write a file in `folder` until its file system is full, then free `leave` bytes:
    a writer then fails part way through its file (torch's zip writer differently from
    a first write refused)."""
    with (folder / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
        f.truncate(max(0, f.tell() - leave))


def test_a_real_full_disk_while_training_names_the_way_out(tmp_path, monkeypatch):
    """torch's zip writer raises RuntimeError with the OSError as its __context__."""
    from asr.checkpoint import load_checkpoint
    from asr.config import apply_overrides
    from asr.training.loop import fit

    manifest = make_tone_corpus(tmp_path / "tones", 6, seed=3)
    overrides = [f'data.train_manifest="{manifest}"', "optim.epochs=2", *_TINY_RUN]
    cfg = apply_overrides(ExperimentConfig(), overrides)
    real_save, saves = torch.save, []

    def save(obj, f):
        saves.append(1)
        if len(saves) == 5:  # epoch 1's files are written, then the disk fills
            fill_disk(exp, leave=8192)
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", save)
    with small_disk(tmp_path / "disk", "8M") as exp:
        with pytest.raises(CheckpointError) as caught:
            fit(cfg, exp)
        message = str(caught.value)
        assert "disk is full" in message and "--resume" in message and str(exp) in message
        (exp / "filler").unlink()
        monkeypatch.setattr(torch, "save", real_save)
        assert load_checkpoint(exp / "last.pt")["train_state"]["epoch"] == 1
        assert not list(exp.rglob("*.tmp"))


_TINY_RUN = [
    'data.valid_manifest=""',
    "data.num_workers=0",
    "model.num_layers=1",
    "model.hidden_size=8",
    "model.conv_channels=4",
    'train.device="cpu"',
    'train.precision="fp32"',
    "train.stats_utterances=4",
    "train.tensorboard=false",
]


def test_the_experiment_config_is_written_whole(tmp_path, monkeypatch):
    """config.toml goes through a temporary file renamed over it, like every other output
    (a full disk mid-write left a truncated config.toml beside the checkpoints)."""
    import tempfile

    import asr.training.loop
    from asr.config import apply_overrides
    from asr.training.loop import fit

    manifest = make_tone_corpus(tmp_path / "tones", 4, seed=3)
    cfg = apply_overrides(ExperimentConfig(), [f'data.train_manifest="{manifest}"', *_TINY_RUN])
    real_mkstemp, temporaries = tempfile.mkstemp, []

    def mkstemp(*args, **kwargs):
        temporaries.append(kwargs.get("prefix"))
        return real_mkstemp(*args, **kwargs)

    class Stop(Exception):
        pass

    def stop(_trainer):
        raise Stop

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(asr.training.loop, "train_one_epoch", stop)
    with pytest.raises(Stop):
        fit(cfg, tmp_path / "exp")
    assert "config.toml" in temporaries
    assert (tmp_path / "exp" / "config.toml").read_text().strip()


def test_stale_temporary_files_are_cleaned(tmp_path):
    payload = {"config": {}, "vocab": [], "features": {}, "model": {}}
    (tmp_path / "last.pt12345.tmp").write_bytes(b"left by kill -9")
    save_checkpoint(tmp_path / "last.pt", payload)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_train_log_keeps_one_record_per_epoch(tmp_path):
    from asr.training.state import append_epoch_log

    log = tmp_path / "train.log"
    for epoch in (1, 2, 2, 3, 3):  # a run killed after writing train.log redoes the epoch
        append_epoch_log(log, {"epoch": epoch, "loss": float(epoch)})
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]


def test_corrupt_archive_at_the_final_name_is_not_trusted(tmp_path):
    from asr.corpora.download import Archive, DownloadError, _download_verified

    (tmp_path / "x.tar.gz").write_bytes(b"not the archive")
    archive = Archive("http://127.0.0.1:9/x.tar.gz", "sha256", "0" * 64, "x")
    with pytest.raises(DownloadError, match="corrupt: delete it"):
        _download_verified(archive, tmp_path)


def test_lm_text_is_normalized_before_building(tmp_path, caplog):
    from asr.inference.lm import _write_normalized

    raw = tmp_path / "book.txt"
    raw.write_text("It’s the cat’s hat, “said” he.\nΩmega here\nplain words\n", encoding="utf-8")
    _write_normalized(raw, tmp_path / "norm.txt")
    assert (tmp_path / "norm.txt").read_text().splitlines() == [
        "it's the cat's hat said he",
        "plain words",
    ]
    assert "normalized" in caplog.text and "prepare-text" in caplog.text


def test_lexicon_words_the_vocabulary_cannot_spell_are_skipped(tmp_path, caplog):
    from asr.decode import DecodingOptions, decode

    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("cat c a t |\ndon’t d o n ’ t |\nhat h a t |\n", encoding="utf-8")
    vocab = Vocabulary.english()
    log_probs = np.log(np.full((1, 12, len(vocab)), 1.0 / len(vocab), np.float32))
    options = DecodingOptions(decoder="beam", lexicon_path=str(lexicon), beam_size=4)
    decode(log_probs, np.array([12]), vocab, options)  # no "Unknown entry in dictionary"
    assert "skipped 1 word" in caplog.text and "don’t" in caplog.text


def test_fuzzed_audio_and_manifests_never_crash(ws, tmp_path, capsys):
    """Seeded byte mutations of real files: every run ends in a result or a message."""
    rng = random.Random(13)
    seeds = [ws / "good" / "utt0.wav", ws / "good.jsonl"]
    for i in range(80):
        source = seeds[i % 2]
        data = bytearray(source.read_bytes())
        for _ in range(rng.randint(1, 8)):
            how = rng.random()
            at = rng.randrange(len(data))
            if how < 0.5:
                data[at] = rng.randrange(256)
            elif how < 0.8:
                del data[at : at + rng.randint(1, 64)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 16))
        mutated = tmp_path / f"fuzz{i}{source.suffix}"
        mutated.write_bytes(bytes(data))
        if source.suffix == ".wav":
            argv = ["transcribe", str(mutated), "--model", str(ws / "model"), "--quiet"]
        else:
            argv = ["data", "check", str(mutated)]
        signal.alarm(30)  # a hang ends the test with TimeoutError
        try:
            code, out, err = run_cli(argv, capsys)  # an exception escaping main() fails it
        finally:
            signal.alarm(0)
        assert code in (0, 1, 2), (i, code, err)
        if code == 2 or (code == 1 and source.suffix == ".wav"):
            assert "asr: error:" in err, (i, err)
        elif code == 1:  # data check lists each problem with its line
            assert "line " in out, (i, out)


@pytest.fixture(autouse=True)
def _alarm_raises():
    def timeout(signum, frame):
        raise TimeoutError("the command hung")

    previous = signal.signal(signal.SIGALRM, timeout)
    yield
    signal.signal(signal.SIGALRM, previous)


@needs_kenlm
def test_lm_built_from_raw_text_decodes(ws, tmp_path, capsys):
    book = tmp_path / "book.txt"
    book.write_text("It’s the cat’s hat.\nThe dog’s bone, “he” said.\n" * 20, encoding="utf-8")
    argv = ["lm", "build", "--text", str(book), "--order", "2", "--out", str(tmp_path / "lm")]
    assert run_cli(argv, capsys)[0] == 0
    assert "’" not in (tmp_path / "lm" / "lexicon.txt").read_text(encoding="utf-8")
    argv = ["transcribe", str(ws / "good" / "utt0.wav"), "--model", str(ws / "model")]
    code, _, err = run_cli(
        [*argv, "--decoder", "beam", "--lm", str(tmp_path / "lm" / "lm.bin")], capsys
    )
    assert code == 0, err


def test_a_bad_line_costs_evaluate_only_itself(ws, tmp_path, capsys):
    from asr.manifest import Utterance, read_manifest, write_manifest

    good = read_manifest(ws / "good.jsonl")
    bad = [
        Utterance(str(ws / "bad" / "truncated.wav"), 1.0, "a cat"),  # its header says more
        Utterance(str(ws / "bad" / "nan.wav"), 1.0, "a cat"),  # a good header, NaN samples
    ]
    write_manifest(tmp_path / "mixed.jsonl", [good[0], bad[0], good[1], bad[1], good[2]])
    out = tmp_path / "eval"
    argv = ["evaluate", str(tmp_path / "mixed.jsonl"), "--model", str(ws / "model")]
    code, _, err = run_cli([*argv, "--out-dir", str(out)], capsys)
    assert code == 1 and "Traceback" not in err
    assert "mixed.jsonl:2: " in err and "truncated" in err and "mixed.jsonl:4: " in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["utterances"] == 3 and [f["line"] for f in summary["failed"]] == [2, 4]
    assert (out / "report.txt").read_text().count("not transcribed, not scored") == 2
    write_manifest(tmp_path / "all_bad.jsonl", bad)
    code, _, err = run_cli(["evaluate", str(tmp_path / "all_bad.jsonl"), *argv[2:]], capsys)
    assert code == 2 and "no utterance could be transcribed" in err


@pytest.mark.parametrize(
    "text, words",
    [
        ("1" * 401, "401 digits"),
        ("[" * 33 + "]" * 33, "nested 33 deep"),
        ('{"a": ' * 100_000, "nested 100000 deep"),
        (b'{"text": "\xff"}', "not UTF-8"),
        ("x" * (1 << 20) + " ", "at most 1048576"),
        ('{"a": 1', "not valid JSON"),
    ],
)
def test_untrusted_json_is_refused_by_name(text, words):
    from asr.jsonsafe import JSONInputError, loads

    with pytest.raises(JSONInputError, match=f"^m.jsonl:3: .*{words}"):
        loads(text, "m.jsonl:3")


def test_untrusted_json_within_bounds_reads_as_json():
    from asr.jsonsafe import loads

    text = '{"text": "[[[[ 1%s ]]]] \\" [", "d": [[1.5e300]], "n": NaN}' % ("0" * 500)
    record = loads(text, "m.jsonl:3")  # brackets and digits inside strings are text
    assert record["d"] == [[1.5e300]] and record["text"].startswith("[[[[ 1000")
    assert record["n"] != record["n"]  # NaN is parsed, for the field's reader to refuse


def test_a_file_written_on_a_full_disk_is_named_and_left_as_it_was(tmp_path):
    from asr.errors import user_message
    from asr.files import FileWriteError, write_atomic

    with small_disk(tmp_path / "disk", "1M") as disk:
        write_atomic(disk / "report.txt", "the old report\n")
        fill_disk(disk)
        with pytest.raises(FileWriteError) as caught:
            write_atomic(disk / "report.txt", "x" * 100_000)
        message = user_message(caught.value)
        assert (
            message
            == f"{disk / 'report.txt'}: cannot write: no space left on the device (disk full)"
        )
        assert (disk / "report.txt").read_text() == "the old report\n"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "report.txt"]


def test_outputs_on_a_full_disk_are_named_and_never_half_written(ws, tmp_path, capsys):
    with small_disk(tmp_path / "disk", "1M") as disk:
        fill_disk(disk)
        argv = ["transcribe", str(ws / "good"), "--model", str(ws / "model")]
        code, _, err = run_cli(
            [*argv, "--output-dir", str(disk), "--output-format", "json"], capsys
        )
        assert code == 2 and "utt0.json: cannot write" in err and "disk full" in err
        argv = ["evaluate", str(ws / "good.jsonl"), "--model", str(ws / "model")]
        code, _, err = run_cli([*argv, "--out-dir", str(disk)], capsys)
        assert code == 2 and "report.txt: cannot write" in err and "disk full" in err
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no 0-byte file, no .tmp


def test_file_names_that_are_not_utf8_work(ws, tmp_path, capsys):
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9")  # Latin-1 bytes, as an old archive unpacks them
    (folder / f"{name}.wav").write_bytes((ws / "good" / "utt0.wav").read_bytes())
    out = tmp_path / "out"
    argv = ["transcribe", str(folder), "--model", str(ws / "model"), "--output-dir", str(out)]
    code, _, err = run_cli([*argv, "--output-format", "json"], capsys)
    assert code == 0, err
    written = (out / f"{name}.json").read_bytes()  # the same bytes as the audio file's name
    assert b'caf\xe9.wav"' in written
