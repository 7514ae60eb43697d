"""`asr data check` on a corpus built to contain each kind of bad entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.corpora.check import (
    CheckConfig,
    check_manifest,
    ctc_min_frames,
    output_frames,
    write_clean,
)
from asr.frames import ctc_min_frames_batch
from asr.manifest import read_manifest

RATE = 16_000


def tone(seconds: float, rate: int = RATE, channels: int = 1, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = level * np.sin(2 * np.pi * 220 * t)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def build_bad_corpus(root: Path) -> tuple[Path, dict[int, str]]:
    """A manifest with one good entry and one entry per problem kind: (path, {line: kind})."""
    audio = root / "audio"
    audio.mkdir()
    sf.write(audio / "good.wav", tone(1.0), RATE)
    (audio / "garbage.wav").write_bytes(b"this is not audio" * 50)
    sf.write(audio / "empty.wav", np.zeros(0), RATE)
    sf.write(audio / "cut.wav", tone(1.0), RATE)
    data = (audio / "cut.wav").read_bytes()
    (audio / "cut.wav").write_bytes(data[: len(data) // 2])
    sf.write(audio / "corrupt.flac", tone(1.0), RATE)
    data = bytearray((audio / "corrupt.flac").read_bytes())
    data[len(data) // 3 : len(data) // 3 + 2000] = np.random.default_rng(0).bytes(2000)
    (audio / "corrupt.flac").write_bytes(bytes(data))
    sf.write(audio / "rate8k.wav", tone(1.0, rate=8000), 8000)
    sf.write(audio / "stereo.wav", tone(1.0, channels=2), RATE)
    sf.write(audio / "silent.wav", np.zeros(RATE), RATE)
    sf.write(audio / "short.wav", tone(0.2), RATE)
    rows = [
        ({"audio_filepath": "audio/good.wav", "duration": 1.0, "text": "fine", "id": "a"}, None),
        ({"audio_filepath": "audio/nowhere.wav", "duration": 1.0, "text": "x"}, "missing"),
        ({"audio_filepath": "audio/garbage.wav", "duration": 1.0, "text": "x"}, "unreadable"),
        ({"audio_filepath": "audio/empty.wav", "duration": 0.0, "text": "x"}, "empty"),
        ({"audio_filepath": "audio/cut.wav", "duration": 0.5, "text": "x"}, "truncated"),
        ({"audio_filepath": "audio/corrupt.flac", "duration": 1.0, "text": "x"}, "corrupt"),
        (
            {
                "audio_filepath": "audio/rate8k.wav",
                "duration": 1.0,
                "text": "x",
                "sample_rate": 16000,
            },
            "sample_rate",
        ),
        (
            {"audio_filepath": "audio/stereo.wav", "duration": 1.0, "text": "x", "channels": 1},
            "channels",
        ),
        ({"audio_filepath": "audio/good.wav", "duration": 3.0, "text": "x", "id": "b"}, "duration"),
        (
            {"audio_filepath": "audio/good.wav", "duration": 1.0, "text": "straße", "id": "c"},
            "vocabulary",
        ),
        (
            {
                "audio_filepath": "audio/short.wav",
                "duration": 0.2,
                "text": "far too many words for a fifth of a second",
            },
            "too-long",
        ),
        (
            {"audio_filepath": "audio/good.wav", "duration": 1.0, "text": "again", "id": "a"},
            "duplicate-id",
        ),
        ({"audio_filepath": "audio/silent.wav", "duration": 1.0, "text": "x"}, "silent"),
        ("{not json", "malformed"),
    ]
    manifest = root / "manifest.jsonl"
    lines, expected = [], {}
    for lineno, (record, kind) in enumerate(rows, start=1):
        lines.append(record if isinstance(record, str) else json.dumps(record))
        if kind:
            expected[lineno] = kind
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, expected


def test_check_finds_each_kind_on_its_line(tmp_path):
    manifest, expected = build_bad_corpus(tmp_path)
    report = check_manifest(manifest)
    found = {(p.line, p.kind) for p in report.problems}
    assert found == set(expected.items())
    assert report.bad_lines == set(expected)
    by_line = {p.line: p for p in report.problems}
    assert by_line[2].audio_filepath.endswith("audio/nowhere.wav")
    assert "header promises 16000 frames" in by_line[5].message
    assert "already on line 1" in by_line[12].message


def test_check_parallel_equals_serial(tmp_path):
    manifest, _ = build_bad_corpus(tmp_path)
    serial = check_manifest(manifest).problems
    assert check_manifest(manifest, CheckConfig(jobs=2)).problems == serial


def test_write_clean_keeps_good_and_lists_every_drop(tmp_path):
    manifest, expected = build_bad_corpus(tmp_path)
    clean, dropped = write_clean(check_manifest(manifest), tmp_path / "clean.jsonl")
    assert [u.id for u in read_manifest(clean)] == ["a"]
    rows = [line.split("\t") for line in dropped.read_text().splitlines()[1:]]
    assert {int(r[0]): r[3].split(":")[0] for r in rows} == expected


def test_cli_check_exit_codes(tmp_path, capsys):
    manifest, expected = build_bad_corpus(tmp_path)
    assert main(["data", "check", str(manifest), "--write-clean", str(tmp_path / "c.jsonl")]) == 1
    out = capsys.readouterr().out
    assert f"{manifest}:line 2: " in out
    assert f"{len(expected)} with problems" in out
    assert main(["data", "check", str(tmp_path / "c.jsonl")]) == 0


@pytest.mark.parametrize(
    "seconds, subsampling, frames",
    [(1.0, 4, 26), (1.0, 1, 101), (0.2, 4, 6), (0.0, 2, 1), (1.0, 3, 34), (0.2, 3, 7)],
)
def test_output_frames_matches_model_arithmetic(seconds, subsampling, frames):
    assert output_frames(seconds, CheckConfig(subsampling=subsampling)) == frames


@pytest.mark.parametrize("text, needed", [("", 0), ("ab", 2), ("aab", 4), ("a  b", 5)])
def test_ctc_min_frames(text, needed):
    assert ctc_min_frames(text) == needed


def test_batched_ctc_min_frames_equals_row_by_row():
    """The padded-batch form training uses (`ctc_feasible`), on numpy and torch alike."""
    import torch

    rng = np.random.default_rng(0)
    rows = [rng.integers(1, 4, size=int(rng.integers(0, 10))).tolist() for _ in range(50)]
    padded = np.zeros((len(rows), max(map(len, rows))), dtype=np.int64)  # (B, U), 0 = padding
    for b, row in enumerate(rows):
        padded[b, : len(row)] = row
    lens = np.array([len(r) for r in rows])
    expected = [ctc_min_frames(r) for r in rows]
    assert ctc_min_frames_batch(padded, lens).tolist() == expected
    got = ctc_min_frames_batch(torch.from_numpy(padded), torch.from_numpy(lens))
    assert got.tolist() == expected


def test_streamed_wav_header_not_called_truncated(tmp_path):
    path = tmp_path / "streamed.wav"
    sf.write(path, tone(0.5), RATE)
    data = bytearray(path.read_bytes())
    index = data.index(b"data")
    data[index + 4 : index + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(path), "duration": 0.5, "text": "a"}))
    assert check_manifest(manifest).problems == []


def test_training_refuses_unreadable_unless_skipping(tmp_path, caplog):
    from asr.manifest import ManifestError
    from asr.text import Vocabulary
    from asr.training.splits import load_split

    manifest, _ = build_bad_corpus(tmp_path)
    clean = tmp_path / "few.jsonl"
    lines = manifest.read_text().splitlines()
    clean.write_text("\n".join(lines[:3]) + "\n")  # good, missing, unreadable
    vocab = Vocabulary.english()
    with pytest.raises(ManifestError, match=r"few\.jsonl:2: .*no such audio file") as err:
        load_split(str(clean), 30.0, vocab, RATE)
    assert "few.jsonl:3:" in str(err.value)
    dataset = load_split(str(clean), 30.0, vocab, RATE, skip_unreadable=True)
    assert [u.id for u in dataset.utterances] == ["a"]
    skipped = [r.getMessage() for r in caplog.records if "skipping unreadable" in r.getMessage()]
    assert len(skipped) == 2 and "few.jsonl:3:" in skipped[1]


def test_expected_rate_and_channels_apply_to_every_line(tmp_path):
    sf.write(tmp_path / "a.wav", tone(1.0, rate=8000), 8000)
    sf.write(tmp_path / "b.wav", tone(1.0, channels=2), RATE)
    sf.write(tmp_path / "c.wav", tone(1.0), RATE)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        "".join(
            json.dumps({"audio_filepath": f"{name}.wav", "duration": 1.0, "text": "ok"}) + "\n"
            for name in "abc"
        )
    )
    assert check_manifest(manifest).problems == []
    report = check_manifest(manifest, CheckConfig(sample_rate=RATE, channels=1))
    assert [(p.line, p.kind) for p in report.problems] == [(1, "sample_rate"), (2, "channels")]
    assert report.problems[0].message == "expected 16000 (--sample-rate), the file has 8000"
