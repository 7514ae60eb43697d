import json

import pytest

from asr.manifest import ManifestError, Utterance, read_manifest, write_manifest

GOOD = {"audio_filepath": "a.wav", "duration": 1.5, "text": "hello"}


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_relative_paths_resolve_against_manifest_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    manifest = write_lines(tmp_path / "sub" / "m.jsonl", [json.dumps(GOOD), ""])
    (utt,) = read_manifest(manifest)
    assert utt.audio_filepath == str((tmp_path / "sub" / "a.wav").resolve())
    assert (utt.duration, utt.text, utt.id, utt.line) == (1.5, "hello", "a", 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            json.dumps({"audio_filepath": "a.wav", "text": "x"}),
            r"missing field\(s\) \['duration'\]",
        ),
        (json.dumps({**GOOD, "duration": "long"}), "duration must be a finite non-negative number"),
        (json.dumps({**GOOD, "duration": -1}), "duration must be a finite non-negative number"),
        (json.dumps({**GOOD, "text": 5}), "audio_filepath and text must be strings"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    manifest = write_lines(tmp_path / "m.jsonl", [json.dumps(GOOD), line])
    with pytest.raises(ManifestError, match=rf"m.jsonl:2: {message}"):
        read_manifest(manifest)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "none.jsonl")


def test_write_then_read(tmp_path):
    utts = [
        Utterance(str(tmp_path / "wav" / "x.wav"), 2.0, "Some Text", "x1", "spk"),
        Utterance("/elsewhere/y.flac", 0.5, "more", "y", ""),
    ]
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, utts)
    first = json.loads(manifest.read_text().splitlines()[0])
    assert first["audio_filepath"] == "wav/x.wav"  # relative below the manifest
    back = read_manifest(manifest)
    assert [(u.audio_filepath, u.duration, u.text, u.id, u.speaker) for u in back] == [
        (str((tmp_path / "wav" / "x.wav").resolve()), 2.0, "Some Text", "x1", "spk"),
        ("/elsewhere/y.flac", 0.5, "more", "y", ""),
    ]


def test_split_by_speakers_is_speaker_disjoint():
    from asr.manifest import Utterance, split_by_speakers

    utts = [Utterance(f"/a/{i}.wav", 1.0, "x", speaker=str(i % 4)) for i in range(12)]
    kept, held = split_by_speakers(utts, ["1", "3"])
    assert {u.speaker for u in held} == {"1", "3"} and {u.speaker for u in kept} == {"0", "2"}
    assert len(kept) + len(held) == 12
    assert [u.audio_filepath for u in held] == [f"/a/{i}.wav" for i in (1, 3, 5, 7, 9, 11)]
    with pytest.raises(ValueError, match="not in the manifest"):
        split_by_speakers(utts, ["9"])
    with pytest.raises(ValueError, match="nothing to train"):
        split_by_speakers(utts, ["0", "1", "2", "3"])
    with pytest.raises(ValueError, match="without a speaker"):
        split_by_speakers([Utterance("/b.wav", 1.0, "x")], ["1"])
