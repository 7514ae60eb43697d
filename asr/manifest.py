"""Manifests: JSON lines in NeMo's convention, the schema every stage reads and writes.

A manifest line is `{"audio_filepath": ..., "duration": seconds, "text": ...}`, optionally
with "id" and "speaker". Relative paths resolve against the manifest's folder. No torch:
importers, checks, evaluation and tuning read manifests on the light install too.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr import jsonsafe
from asr.audio import AudioError, audio_info
from asr.files import atomic_write
from asr.usererror import UserError

__all__ = [
    "ManifestError",
    "Utterance",
    "find_unreadable",
    "parse_manifest_line",
    "read_manifest",
    "split_by_speakers",
    "split_held_out",
    "split_manifest",
    "write_dropped",
    "write_manifest",
]

_REQUIRED = ("audio_filepath", "duration", "text")


class ManifestError(UserError, ValueError):
    """A manifest line that cannot be used; the message names the file and line."""


@dataclass
class Utterance:
    audio_filepath: str  # absolute path
    duration: float  # seconds, as the manifest says
    text: str  # transcript as given (normalized when used)
    id: str = ""  # utterance id (defaults to the file's stem)
    speaker: str = ""  # speaker id, when known
    line: int = 0  # 1-based line in the manifest it came from

    def to_json(self, root: Path | None = None) -> dict:
        path = Path(self.audio_filepath)
        if root is not None and path.is_relative_to(root):
            path = path.relative_to(root)
        record = {"audio_filepath": str(path), "duration": round(self.duration, 4)}
        record["text"] = self.text
        if self.id:
            record["id"] = self.id
        if self.speaker:
            record["speaker"] = self.speaker
        return record


def parse_manifest_line(raw: str, lineno: int, manifest: Path) -> Utterance:
    """One JSON line of `manifest` (an absolute path) -> Utterance; ManifestError if bad."""
    where = f"{manifest}:{lineno}"
    try:
        record = jsonsafe.loads(raw, where)
    except jsonsafe.JSONInputError as err:
        raise ManifestError(str(err)) from None
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {missing}")
    duration = record["duration"]
    number = not isinstance(duration, bool) and isinstance(duration, int | float)
    if not number or not 0 <= duration < math.inf:  # NaN and Infinity (json.dumps writes them)
        raise ManifestError(
            f"{where}: duration must be a finite non-negative number, got {duration!r}"
        )
    if not isinstance(record["text"], str) or not isinstance(record["audio_filepath"], str):
        raise ManifestError(f"{where}: audio_filepath and text must be strings")
    path = Path(record["audio_filepath"])
    if not path.is_absolute():
        path = manifest.parent / path
    return Utterance(
        audio_filepath=str(path),
        duration=float(duration),
        text=record["text"],
        id=str(record.get("id") or path.stem),
        speaker=str(record.get("speaker") or ""),
        line=lineno,
    )


def manifest_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; ManifestError for a missing or
    unreadable file, or a line that is not UTF-8."""
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a manifest file" if path.is_dir() else "no such manifest"
        raise ManifestError(f"{path}: {what}")
    try:
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ManifestError(f"{path}:{lineno}: not UTF-8 text ({err.reason})") from err
                if text.strip():
                    yield lineno, text
    except PermissionError as err:
        raise ManifestError(f"{path}: permission denied") from err


def read_manifest(path: str | Path, allow_empty: bool = True) -> list[Utterance]:
    """All utterances of a manifest; a malformed line raises ManifestError with its number,
    and so does a manifest without utterances unless `allow_empty`."""
    path = Path(path)
    resolved = path.resolve()
    utterances = [parse_manifest_line(raw, n, resolved) for n, raw in manifest_lines(path)]
    if not utterances and not allow_empty:
        raise ManifestError(f"{path}: the manifest holds no utterances")
    return utterances


def write_manifest(path: str | Path, utterances: Sequence[Utterance]) -> None:
    """Write utterances as JSON lines, paths relative to the manifest where they lie below it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.parent.resolve()
    with atomic_write(path) as f:
        for utt in utterances:
            f.write(json.dumps(utt.to_json(root), ensure_ascii=False) + "\n")


def write_dropped(path: str | Path, dropped: Sequence[tuple[Utterance, str]]) -> None:
    """A TSV of dropped entries: manifest line (0 when none), id, audio file, reason."""
    with atomic_write(path) as f:
        f.write("line\tid\taudio_filepath\treason\n")
        for utt, reason in dropped:
            f.write(f"{utt.line}\t{utt.id}\t{utt.audio_filepath}\t{reason}\n")


def find_unreadable(utterances: Sequence[Utterance]) -> list[tuple[Utterance, str]]:
    """(utterance, reason) for each entry whose audio header cannot be read (or is missing)."""
    unreadable = []
    for utt in utterances:
        try:
            audio_info(utt.audio_filepath)
        except AudioError as err:
            unreadable.append((utt, str(err)))
    return unreadable


def split_held_out(
    utterances: Sequence[Utterance], count: int, seed: int = 0
) -> tuple[list[Utterance], list[Utterance]]:
    """A seeded random `count` utterances held out (e.g. for checkpoint selection), the rest
    kept, both in manifest order."""
    if not 0 < count < len(utterances):
        raise ValueError(f"cannot hold out {count} of {len(utterances)} utterances")
    order = list(range(len(utterances)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    kept = [u for i, u in enumerate(utterances) if i not in held]
    return kept, [u for i, u in enumerate(utterances) if i in held]


def split_by_speakers(
    utterances: Sequence[Utterance], speakers: Sequence[str]
) -> tuple[list[Utterance], list[Utterance]]:
    """Hold out every utterance of `speakers` (a speaker-disjoint validation set), keep the
    rest; both in manifest order. Unknown speakers and manifests without speakers are errors."""
    wanted = {str(s) for s in speakers}
    known = {u.speaker for u in utterances}
    if "" in known:
        raise ValueError("the manifest has entries without a speaker: cannot split by speaker")
    missing = sorted(wanted - known)
    if missing:
        raise ValueError(f"speaker(s) {missing} not in the manifest (it has {len(known)})")
    if wanted >= known:
        raise ValueError("holding out every speaker leaves nothing to train on")
    kept = [u for u in utterances if u.speaker not in wanted]
    return kept, [u for u in utterances if u.speaker in wanted]


def split_manifest(
    manifest: str | Path,
    out_dir: str | Path,
    held_out: int = 0,
    speakers: Sequence[str] = (),
    seed: int = 0,
) -> tuple[tuple[Path, int], tuple[Path, int]]:
    """<out_dir>/train.jsonl and <out_dir>/held_out.jsonl from `manifest`: every utterance
    of `speakers` held out when named (`split_by_speakers`), else `held_out` drawn with
    `seed` (`split_held_out`). Returns (path, utterances) of each."""
    utterances = read_manifest(manifest)
    try:
        if speakers:
            kept, held = split_by_speakers(utterances, speakers)
        else:
            kept, held = split_held_out(utterances, held_out, seed)
    except ValueError as err:  # the user's numbers or speakers: a message naming the file
        raise ManifestError(f"{manifest}: {err}") from err
    out_dir = Path(out_dir)
    write_manifest(out_dir / "train.jsonl", kept)
    write_manifest(out_dir / "held_out.jsonl", held)
    return (out_dir / "train.jsonl", len(kept)), (out_dir / "held_out.jsonl", len(held))
