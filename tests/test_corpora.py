"""Corpus importers on tiny corpora built here, in each layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_librispeech, write_tone

from asr.cli import main
from asr.corpora.importers import (
    CorpusError,
    DurationFilter,
    filter_by_duration,
    import_commonvoice,
    import_kaldi,
    import_librispeech,
    import_ljspeech,
    librispeech_subsets,
)
from asr.manifest import Utterance, read_manifest

RATE = 16_000


@pytest.mark.parametrize("ext", [".flac", ".wav", ".opus"])
def test_librispeech_counts_and_durations(tmp_path, ext):
    make_librispeech(
        tmp_path, "train-clean-5", {("19", "198"): [1.0, 2.0], ("26", "495"): [0.5]}, ext
    )
    utts = import_librispeech(tmp_path, "train-clean-5")
    assert [u.id for u in utts] == ["19-198-0000", "19-198-0001", "26-495-0000"]
    assert [u.speaker for u in utts] == ["19", "19", "26"]
    assert sum(u.duration for u in utts) == pytest.approx(3.5, abs=0.03)
    assert utts[1].text == "WORDS NUMBER 1"


def test_librispeech_subsets_found_nested_or_flat(tmp_path):
    make_librispeech(tmp_path / "LibriSpeech", "dev-clean-2", {("1", "2"): [0.3]})
    make_librispeech(tmp_path / "LibriSpeech", "train", {("3", "4"): [0.3]})
    assert librispeech_subsets(tmp_path) == ["dev-clean-2", "train"]
    assert len(import_librispeech(tmp_path, "train")) == 1


def test_librispeech_missing_audio_names_line(tmp_path):
    make_librispeech(tmp_path, "dev", {("1", "2"): [0.3, 0.3]})
    (tmp_path / "dev/1/2/1-2-0001.flac").unlink()
    with pytest.raises(CorpusError, match=r"1-2\.trans\.txt:2: no audio file 1-2-0001"):
        import_librispeech(tmp_path, "dev")


def test_commonvoice(tmp_path):
    write_tone(tmp_path / "clips/a.mp3", 1.0, fmt="MP3")
    write_tone(tmp_path / "clips/b.mp3", 2.0, fmt="MP3")
    (tmp_path / "train.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\n"
        'spk1\ta.mp3\tHello "there".\t2\n'
        "spk2\tb.mp3\tSecond one\t1\n"
    )
    utts = import_commonvoice(tmp_path, "train")
    assert [(u.id, u.speaker, u.text) for u in utts] == [
        ("a", "spk1", 'Hello "there".'),
        ("b", "spk2", "Second one"),
    ]
    assert utts[1].duration == pytest.approx(2.0, abs=0.1)


def test_commonvoice_missing_clip(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "dev.tsv").write_text("client_id\tpath\tsentence\nx\tgone.mp3\thi\n")
    with pytest.raises(CorpusError, match=r"dev\.tsv:2: .*gone\.mp3: no such audio file"):
        import_commonvoice(tmp_path, "dev")


def test_ljspeech(tmp_path):
    write_tone(tmp_path / "wavs/LJ001-0001.wav", 1.5)
    write_tone(tmp_path / "wavs/LJ001-0002.wav", 0.5)
    (tmp_path / "metadata.csv").write_text(
        "LJ001-0001|Printing, in 1 sense|Printing, in one sense\nLJ001-0002|Only raw|\n"
    )
    utts = import_ljspeech(tmp_path)
    assert [(u.id, u.text) for u in utts] == [
        ("LJ001-0001", "Printing, in one sense"),
        ("LJ001-0002", "Only raw"),
    ]
    assert utts[0].duration == pytest.approx(1.5)


def test_kaldi_plain_and_segments(tmp_path):
    data = tmp_path / "data"
    write_tone(tmp_path / "rec1.wav", 1.0)
    write_tone(tmp_path / "rec2.wav", 3.0)
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {tmp_path}/rec1.wav\nu2 ../rec2.wav\n")
    (data / "text").write_text("u1 first text\nu2 second text\n")
    (data / "utt2spk").write_text("u1 s1\nu2 s2\n")
    utts = import_kaldi(data)
    assert [(u.id, u.speaker, u.text) for u in utts] == [
        ("u1", "s1", "first text"),
        ("u2", "s2", "second text"),
    ]
    assert utts[1].duration == pytest.approx(3.0)

    (data / "wav.scp").write_text(f"r2 {tmp_path}/rec2.wav\n")
    (data / "text").write_text("seg1 one\nseg2 two\n")
    (data / "segments").write_text("seg1 r2 0.0 1.25\nseg2 r2 1.5 3.0\n")
    (data / "utt2spk").unlink()
    utts = import_kaldi(data, tmp_path / "cuts")
    assert [u.duration for u in utts] == pytest.approx([1.25, 1.5])
    assert Path(utts[0].audio_filepath).parent == (tmp_path / "cuts").resolve()
    for bad in ("../../escaped", "a/b", ".hidden"):  # ids become file names only if safe
        (data / "text").write_text(f"{bad} one\n")
        (data / "segments").write_text(f"{bad} r2 0.0 1.25\n")
        with pytest.raises(CorpusError, match=r"segments:1: segment id .* cannot be a file name"):
            import_kaldi(data, tmp_path / "cuts2")
    assert not (tmp_path / "escaped.wav").exists() and not list((tmp_path / "cuts2").glob("*"))


def test_kaldi_tab_separated_with_paths_from_the_corpus_folder(tmp_path):
    """speechocean762's layout: tab-separated `text`, space-separated `utt2spk`, and wav.scp
    paths relative to the corpus folder above the data dir (`WAVE/SPEAKER0036/x.wav`)."""
    write_tone(tmp_path / "WAVE" / "SPEAKER0036" / "000360013.wav", 1.0)
    data = tmp_path / "train"
    data.mkdir()
    (data / "wav.scp").write_text("000360013\tWAVE/SPEAKER0036/000360013.wav\n")
    (data / "text").write_text("000360013\tIT'S JUST SO HARD\n")
    (data / "utt2spk").write_text("000360013 0036\n")
    [utt] = import_kaldi(data)
    assert (utt.id, utt.speaker, utt.text) == ("000360013", "0036", "IT'S JUST SO HARD")
    assert Path(utt.audio_filepath) == (tmp_path / "WAVE" / "SPEAKER0036" / "000360013.wav")


@pytest.mark.parametrize(
    "scp, text, message",
    [
        ("u1 a.wav\nu1 b.wav\n", "u1 x\n", r"wav\.scp:2: duplicate id 'u1'"),
        ("u1 sox a.wav -t wav - |\n", "u1 x\n", r"wav\.scp:1: piped commands"),
        ("u1 a.wav\n", "u2 x\n", r"text:1: utterance 'u2' is not in wav\.scp"),
    ],
)
def test_kaldi_errors(tmp_path, scp, text, message):
    (tmp_path / "wav.scp").write_text(scp)
    (tmp_path / "text").write_text(text)
    with pytest.raises(CorpusError, match=message):
        import_kaldi(tmp_path)


def test_duration_filter_reports_drops():
    utts = [Utterance(f"/{i}.wav", d, "x", id=str(i)) for i, d in enumerate([0.2, 1.0, 40.0])]
    kept, dropped = filter_by_duration(utts, DurationFilter(0.5, 30.0))
    assert [u.id for u in kept] == ["1"]
    assert [(u.id, reason) for u, reason in dropped] == [
        ("0", "duration 0.20 s < 0.5 s"),
        ("2", "duration 40.00 s > 30.0 s"),
    ]


def test_cli_prepare_librispeech(tmp_path, capsys):
    make_librispeech(tmp_path / "corpus", "train", {("1", "2"): [0.3, 1.0, 2.0]})
    make_librispeech(tmp_path / "corpus", "dev", {("5", "6"): [1.0]})
    out = tmp_path / "manifests"
    rc = main(
        [
            "data",
            "prepare",
            "librispeech",
            "--root",
            str(tmp_path / "corpus"),
            "--out",
            str(out),
            "--min-duration",
            "0.5",
        ]
    )
    assert rc == 0
    train = read_manifest(out / "train.jsonl")
    assert [u.id for u in train] == ["1-2-0001", "1-2-0002"]
    assert len(read_manifest(out / "dev.jsonl")) == 1
    dropped = (out / "train.dropped.tsv").read_text().splitlines()
    assert len(dropped) == 2 and "1-2-0000" in dropped[1]
    assert "dropped 1 by duration" in capsys.readouterr().out


@pytest.mark.parametrize(
    "corpus, extra, manifest, count",
    [
        ("commonvoice", ["--splits", "dev"], "dev.jsonl", 1),
        ("ljspeech", [], "ljspeech.jsonl", 1),
        ("kaldi", ["--name", "mykaldi"], "mykaldi.jsonl", 1),
    ],
)
def test_cli_prepare_other_corpora(tmp_path, corpus, extra, manifest, count):
    root = tmp_path / "corpus"
    write_tone(root / "clips/x.mp3", 1.0, fmt="MP3")
    (root / "dev.tsv").write_text("client_id\tpath\tsentence\ns\tx.mp3\thello\n")
    write_tone(root / "wavs/LJ1.wav", 1.0)
    (root / "metadata.csv").write_text("LJ1|hello|hello\n")
    (root / "wav.scp").write_text("u1 wavs/LJ1.wav\n")
    (root / "text").write_text("u1 hello\n")
    out = tmp_path / "out"
    assert main(["data", "prepare", corpus, "--root", str(root), "--out", str(out), *extra]) == 0
    assert [u.text for u in read_manifest(out / manifest)] == ["hello"] * count
