"""`asr data synth`: sentences, seeded plans, resuming, skipping, missing engines.

A fake `flite` on PATH (a Python script) makes the engine-driving tests deterministic and
independent of the installed synthesizers; one test runs the real engines when present.
"""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path

import pytest
import soundfile as sf
from helpers import FAKE_FLITE

from asr.corpora.synth import SynthConfig, SynthError, plan_jobs, read_sentences, synthesize_corpus
from asr.manifest import read_manifest


@pytest.fixture
def fake_flite(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "flite"
    script.write_text(FAKE_FLITE.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return script


def test_read_sentences_normalizes_and_reports(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text(
        "CHAPTER I\n\nIt was 1984, and the clocks\nwere striking thirteen. Hi!\n\n"
        "The café served crème brûlée to everyone who came. Straße has a letter we lack.\n"
        "It was 1984, and the clocks were striking thirteen.\n"
    )
    kept, rejected = read_sentences([book], min_words=3, max_words=9)
    assert kept == ["the cafe served creme brulee to everyone who came"]
    assert rejected == [
        ("CHAPTER I", "2 word(s) < 3"),
        ("It was 1984, and the clocks were striking thirteen.", "11 words > 9"),
        ("Hi!", "1 word(s) < 3"),
        ("Straße has a letter we lack.", "characters ['ß']"),
    ]
    kept, _ = read_sentences([book], min_words=3, max_words=20)
    assert kept[0] == ("it was nineteen eighty four and the clocks were striking thirteen")


def test_plan_is_seeded_per_index(tmp_path):
    sentences = [f"sentence number {i}" for i in range(20)]
    cfg = SynthConfig(voices=("flite:kal16", "flite:slt", "espeak-ng:en-us+m1"), seed=3)
    first = plan_jobs(sentences, tmp_path, cfg)
    assert first == plan_jobs(sentences, tmp_path, cfg)
    assert plan_jobs(sentences[:5], tmp_path, cfg) == first[:5]  # extending keeps the prefix
    other = plan_jobs(sentences, tmp_path, SynthConfig(voices=cfg.voices, seed=4))
    assert [j.voice for j in other] != [j.voice for j in first]
    assert len({j.voice for j in first}) == 3
    assert all(0.85 <= j.rate <= 1.2 and 0.85 <= j.pitch <= 1.15 for j in first)


def test_synth_writes_16k_skips_bad_and_resumes(tmp_path, fake_flite):
    sentences = ["one two three", "this will fail now", "only silence here", "four five six"]
    cfg = SynthConfig(voices=("flite:kal16",), jobs=2)
    out = tmp_path / "corpus"
    result = synthesize_corpus(sentences, out, cfg)
    assert [u.text for u in result.utterances] == ["one two three", "four five six"]
    assert result.synthesized == 2
    assert [(u.text, r.split(":")[-1].strip()) for u, r in result.skipped] == [
        ("this will fail now", "cannot speak this"),
        ("only silence here", "silent output (peak below -50.0 dBFS)"),
    ]
    info = sf.info(result.utterances[0].audio_filepath)
    assert (info.samplerate, info.channels) == (16_000, 1)
    assert result.utterances[0].duration == pytest.approx(0.3, abs=0.01)
    mtimes = [Path(u.audio_filepath).stat().st_mtime_ns for u in result.utterances]
    again = synthesize_corpus(sentences, out, cfg)
    assert again.synthesized == 0
    assert [Path(u.audio_filepath).stat().st_mtime_ns for u in again.utterances] == mtimes


def test_missing_engine_names_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SynthError, match=r"apt-get install espeak-ng"):
        synthesize_corpus(["a b c"], tmp_path / "o", SynthConfig(voices=("espeak-ng:en-us",)))


def test_cli_synth_relative_out(tmp_path, fake_flite, capsys, monkeypatch):
    from asr.cli import main

    monkeypatch.chdir(tmp_path)
    text = tmp_path / "t.txt"
    text.write_text("The first sentence is here. A second one follows it. Then a third.\n")
    out = Path("data/o")
    rc = main(["data", "synth", "--text", str(text), "--out", str(out), "--voices",
               "flite:awb", "--jobs", "1"])  # fmt: skip
    assert rc == 0
    assert [u.text for u in read_manifest(out / "manifest.jsonl")] == [
        "the first sentence is here",
        "a second one follows it",
        "then a third",
    ]
    assert "3 utterances" in capsys.readouterr().out
    assert all(Path(u.audio_filepath).is_file() for u in read_manifest(out / "manifest.jsonl"))


REAL_VOICES = ("espeak-ng:en-us+f3", "flite:slt")


@pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("flite")), reason="synthesizers not installed"
)
def test_real_engines_reproducible(tmp_path):
    sentences = ["the quick brown fox jumps over the lazy dog", "how are you today"]
    cfg = SynthConfig(voices=REAL_VOICES, seed=1, jobs=2)
    a = synthesize_corpus(sentences, tmp_path / "a", cfg)
    b = synthesize_corpus(sentences, tmp_path / "b", cfg)
    assert not a.skipped
    assert [(u.speaker, u.duration) for u in a.utterances] == [
        (u.speaker, u.duration) for u in b.utterances
    ]
    assert all(0.5 < u.duration < 6 for u in a.utterances)
