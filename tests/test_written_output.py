"""The written text where text leaves the toolkit (issue 33 item 3): transcripts are cased,
punctuated and inverse-normalized by default, `raw` (the API, `--raw`) gives the spoken
words, written words keep the timings of the spoken words they stand for, a punctuation
model that cannot load fails by name, and WER scores the spoken words whatever the option.

The tone oracle (a Recognizer that reads tone recordings without training) says known
English words; the bundled punctuation model writes them. The server's formats, the live
streams and Wyoming are tested in test_serve.py and test_stream.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from helpers import ToneOracleRecognizer, ToneOracleRunner, assert_raw, assert_written

from asr.cli import main
from asr.corpora.tones import ToneConfig, render_tones_timed
from asr.decode import DecodingOptions, Hypothesis
from asr.evaluate import evaluate_manifest
from asr.inference.align import WordTiming
from asr.inference.recognizer import Recognizer, Transcript
from asr.inference.segment import SegmentConfig
from asr.manifest import Utterance, write_manifest
from asr.punctuation import PunctModelError

SR = 16_000
TEXT = "the big dog sat on a red mat"
WRITTEN = "The big dog sat on a red mat."  # TEXT as the bundled punctuation model writes it


@pytest.fixture(scope="module")
def recording():
    """(waveform, [(word, start, end)]) of TEXT in the tone corpus."""
    return render_tones_timed(TEXT, np.random.default_rng(0), ToneConfig())


class _Oracle(ToneOracleRecognizer):
    """The tone oracle with `decoding` (DecodingOptions fields) as its own options, as
    load_model resolves them."""

    def __init__(self, **decoding) -> None:
        super().__init__()
        self.default_options = DecodingOptions(**decoding)


# --- the Python API -----------------------------------------------------------------------


def test_the_api_writes_by_default_and_raw_gives_the_spoken_words(recording):
    wave, _ = recording
    written = _Oracle().transcribe(wave, word_timestamps=True)[0]
    assert written.text == WRITTEN and written.raw_text == TEXT
    assert [w.word for w in written.words] == TEXT.split()  # timed spoken words, as before
    assert [w.spoken for w in written.written] == [(k,) for k in range(len(TEXT.split()))]
    raw = _Oracle().transcribe(wave, raw=True)[0]
    assert raw.text == raw.raw_text == TEXT and raw.written == []
    # a recognizer whose own options say raw (load_model(raw=True), --raw), and the request
    # that asks for the written text all the same: one door, Recognizer.options
    assert _Oracle(raw=True).transcribe(wave)[0].text == TEXT
    assert _Oracle(raw=True).transcribe(wave, raw=False)[0].text == WRITTEN
    assert _Oracle().options(raw=True).raw and not _Oracle(raw=True).options(raw=False).raw


def test_a_long_recording_is_written_whole(recording):
    """Chunks split at pauses are decoded apart and written as one text."""
    wave, _ = recording
    audio = np.concatenate([wave, np.zeros(SR, np.float32), wave])
    segment = SegmentConfig(max_seconds=0.6 * len(audio) / SR)
    (long,) = _Oracle().transcribe(audio, batch_size=1, segment=segment)
    assert long.chunks == 2 and long.raw_text == f"{TEXT} {TEXT}"
    assert_written(long.text, long.raw_text)


def test_written_words_span_the_spoken_words_they_stand_for():
    """Spoken "twenty five dollars" is one written word, "$25.", timed from the start of
    "twenty" to the end of "dollars"; every other written word keeps its spoken word's
    timing."""
    spoken = ["mister", "smith", "paid", "twenty", "five", "dollars"]
    words = [WordTiming(w, i, i + 0.5, 0.9 - 0.1 * i) for i, w in enumerate(spoken)]
    transcript = Transcript("x", " ".join(spoken), 6.0, Hypothesis(" ".join(spoken)), words)
    recognizer = Recognizer(ToneOracleRunner())
    recognizer.write(transcript, DecodingOptions())
    assert transcript.text.startswith("Mr. Smith") and transcript.text.endswith(" paid $25.")
    assert transcript.raw_text == " ".join(spoken) and transcript.words == words
    timed = transcript.written_words
    assert [w.word for w in timed] == transcript.text.split()
    money = timed[-1]
    assert (money.word, money.start, money.end) == ("$25.", 3, 5.5)
    assert money.confidence == pytest.approx(words[5].confidence)  # the lowest of the three
    assert transcript.written[-1].spoken == (3, 4, 5)


def test_a_missing_punctuation_model_fails_by_name_and_raw_needs_none(tmp_path, recording):
    """No silent fall back to the spoken words: the error names the folder and the way to
    do without (raw), before any audio is decoded; raw transcribes all the same; a server
    that would write fails at its start, not on a request."""
    from asr.serve import ServeConfig, Server

    wave, _ = recording
    missing = tmp_path / "no-punct-model"
    recognizer = Recognizer(ToneOracleRunner(), punct_model=missing)
    with pytest.raises(PunctModelError) as err:
        recognizer.transcribe(wave)
    assert str(missing) in str(err.value) and "--raw" in str(err.value)
    assert recognizer.transcribe(wave, raw=True)[0].text == TEXT
    with pytest.raises(PunctModelError, match="no-punct-model"):
        Server(recognizer, ServeConfig())
    recognizer.default_options = DecodingOptions(raw=True)
    Server(recognizer, ServeConfig())  # a --raw server needs no punctuation model


# --- asr transcribe -----------------------------------------------------------------------


@pytest.fixture
def oracle_cli(monkeypatch, recording, tmp_path):
    """`asr transcribe` on the tone oracle (load_model's decoding flags become its options):
    a function (flags) -> stdout, and the recording's WAV file."""
    import asr.inference.recognizer

    load = lambda *a, **decoding: _Oracle(**decoding)  # noqa: E731
    monkeypatch.setattr(asr.inference.recognizer, "load_model", load)
    wav = tmp_path / "a.wav"
    sf.write(wav, recording[0], SR)

    def run(*flags: str) -> None:
        assert main(["transcribe", str(wav), "--quiet", *flags]) == 0

    return run, wav


def test_transcribe_prints_the_written_text_and_raw_the_spoken_words(oracle_cli, capsys):
    run, _ = oracle_cli
    run()
    assert capsys.readouterr().out.strip() == WRITTEN
    run("--raw")
    out = capsys.readouterr().out.strip()
    assert out == TEXT
    assert_raw(out)


def test_transcribe_json_has_both_texts_and_the_word_map(oracle_cli, capsys, recording):
    run, _ = oracle_cli
    run("--output-format", "json")
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == WRITTEN and record["raw_text"] == TEXT
    assert [w["word"] for w in record["words"]] == TEXT.split()  # timed spoken words
    for word, (_, start, end) in zip(record["words"], recording[1], strict=True):
        assert abs(word["start"] - start) < 0.1 and abs(word["end"] - end) < 0.1
    assert [w["word"] for w in record["written"]] == WRITTEN.split()
    assert [w["spoken"] for w in record["written"]] == [[k] for k in range(len(TEXT.split()))]
    assert record["options"]["raw"] is False
    run("--output-format", "json", "--raw")
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == record["raw_text"] == TEXT and record["written"] == []
    assert record["options"]["raw"] is True


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt"])
def test_transcribe_files_are_written_and_raw(fmt, oracle_cli, tmp_path, recording):
    """Each output file carries the written text; subtitle cues span the spoken words'
    times; --raw writes the spoken words."""
    from helpers import parse_srt, parse_vtt

    run, wav = oracle_cli
    for flags, expected in (((), WRITTEN), (("--raw",), TEXT)):
        out = tmp_path / ("raw" if flags else "written")
        run("--output-format", fmt, "--output-dir", str(out), *flags)
        text = (out / f"a.{fmt}").read_text(encoding="utf-8")
        if fmt == "txt":
            assert text == expected + "\n"
            continue
        cues = (parse_srt if fmt == "srt" else parse_vtt)(text)
        assert " ".join(c[2] for c in cues) == expected
        truth = recording[1]
        assert abs(cues[0][0] - truth[0][1]) < 0.1 and abs(cues[-1][1] - truth[-1][2]) < 0.1


# --- WER ----------------------------------------------------------------------------------


def test_evaluate_scores_the_spoken_words_and_never_writes(tmp_path, recording, monkeypatch):
    """The same WER and report whether the recognizer writes or not; its punctuation model
    is never asked for (it could not be loaded here); the report's hypotheses are spoken."""
    wave, _ = recording
    sf.write(tmp_path / "a.wav", wave, SR)
    manifest = tmp_path / "dev.jsonl"
    reference = "The big dog sat on the red mat!"  # one word wrong, written as a book writes
    write_manifest(manifest, [Utterance(str(tmp_path / "a.wav"), len(wave) / SR, reference)])
    results = {}
    for raw in (False, True):
        recognizer = _Oracle(raw=raw)
        recognizer.punct_model = tmp_path / "no-punct-model"  # writing would fail
        results[raw] = evaluate_manifest(recognizer, manifest, tmp_path / f"eval{raw}")
    for result in results.values():
        assert (result.words.substitutions, result.words.reference_length) == (1, 8)
        assert result.words.rate == pytest.approx(1 / 8)
    report = (tmp_path / "evalFalse" / "report.txt").read_text()
    assert report == (tmp_path / "evalTrue" / "report.txt").read_text()
    assert "HYP: the big dog sat on   a red mat\n" in report  # spoken, aligned to REF
    summary = json.loads((tmp_path / "evalFalse" / "summary.json").read_text())
    assert summary["decoding"]["raw"] is True  # what it scored: the spoken words
