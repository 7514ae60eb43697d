import json

import pytest

from asr.data import ManifestError, Utterance, read_manifest, write_manifest

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
        (json.dumps({**GOOD, "duration": "long"}), "duration must be a non-negative number"),
        (json.dumps({**GOOD, "duration": -1}), "duration must be a non-negative number"),
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
