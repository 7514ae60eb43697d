"""`asr data synth --voices hibari:heart`: the in-process neural voice (PyPI hibari-tts).

Skipped when hibari-tts is not installed (`pip install '.[synth]'`; the dev extra has it).
"""

from __future__ import annotations

import builtins

import pytest
import soundfile as sf

from asr.corpora import synth
from asr.corpora.synth import SynthConfig, SynthError, plan_jobs, synthesize_corpus
from asr.manifest import read_manifest


def test_missing_hibari_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_hibari(name, *args, **kwargs):
        if name == "hibari" or name.startswith("hibari."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(synth, "_HIBARI", {})
    monkeypatch.setattr(builtins, "__import__", no_hibari)
    with pytest.raises(SynthError, match=r"pip install '\.\[synth\]'"):
        synthesize_corpus(["a b c"], tmp_path / "o", SynthConfig(voices=("hibari:heart",)))


def test_plan_keeps_earlier_draws(tmp_path):
    """The noise seed is drawn after voice, rate and pitch: other engines' plans are unchanged."""
    cfg = SynthConfig(voices=("flite:kal16", "hibari:heart"), seed=5)
    jobs = plan_jobs([f"sentence {i}" for i in range(30)], tmp_path, cfg)
    assert {j.voice for j in jobs} == {"flite:kal16", "hibari:heart"}
    assert len({j.noise_seed for j in jobs}) == 30
    assert all(0.85 <= j.rate <= 1.2 for j in jobs)


def test_hibari_corpus_16k_manifest_resume(tmp_path):
    pytest.importorskip("hibari")
    from asr.cli import main

    text = tmp_path / "t.txt"
    text.write_text(
        "The old man walked slowly down the road. She opened the window and looked out. "
        "It was a cold and quiet morning.\n"
    )
    out = tmp_path / "corpus"
    args = ["data", "synth", "--text", str(text), "--out", str(out), "--jobs", "1"]
    assert main([*args, "--voices", "hibari:heart"]) == 0
    utts = read_manifest(out / "manifest.jsonl")
    assert [u.text for u in utts] == [
        "the old man walked slowly down the road",
        "she opened the window and looked out",
        "it was a cold and quiet morning",
    ]
    for utt in utts:
        info = sf.info(utt.audio_filepath)
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert info.duration == pytest.approx(utt.duration, abs=1e-3)
        assert 1.0 < len(utt.text.split()) / utt.duration < 5.0  # words per second
        assert utt.speaker == "hibari:heart"
    cfg = SynthConfig(voices=("hibari:heart",), jobs=1)
    again = synthesize_corpus([u.text for u in utts], out, cfg)
    assert again.synthesized == 0  # resumed: every WAV was there
    fresh = synthesize_corpus([u.text for u in utts], tmp_path / "fresh", cfg)
    for a, b in zip(utts, fresh.utterances, strict=True):  # seeded rate and noise
        assert (sf.read(a.audio_filepath)[0] == sf.read(b.audio_filepath)[0]).all()
    with pytest.raises(SynthError, match="unknown voice 'nobody'"):
        synthesize_corpus(["a b c"], tmp_path / "x", SynthConfig(voices=("hibari:nobody",)))
