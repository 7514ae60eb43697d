"""Corpus importers: a corpus folder in a known layout -> utterances for a manifest.

    asr data prepare librispeech --root /work/shared/data/mini_librispeech --out data/manifests/mini

Durations come from the audio headers (`audio_info`), never from decoding, so importing
the 960 h LibriSpeech takes minutes, not hours. Every importer fails with the file and
line of the first entry it cannot use: nothing is dropped silently. `CORPORA` maps each
name `asr data prepare` takes to its importer; a new layout is an importer and an entry.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import AudioError, audio_info, load_audio
from asr.config import option
from asr.manifest import Utterance, write_dropped, write_manifest
from asr.usererror import UserError

__all__ = [
    "CORPORA",
    "Corpus",
    "CorpusError",
    "DurationFilter",
    "LIBRISPEECH_SUBSETS",
    "filter_by_duration",
    "import_commonvoice",
    "import_kaldi",
    "import_librispeech",
    "import_ljspeech",
    "librispeech_subsets",
    "PreparedManifest",
    "prepare_corpus",
]

log = logging.getLogger(__name__)

# Audio extensions tried, in order, for a LibriSpeech utterance id.
_LIBRI_EXTENSIONS = (".flac", ".opus", ".wav", ".ogg", ".mp3")

# Full LibriSpeech (OpenSLR 12) and Mini LibriSpeech (OpenSLR 31).
LIBRISPEECH_SUBSETS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
    "train-clean-5",
    "dev-clean-2",
)


class CorpusError(UserError, ValueError):
    """A corpus that does not follow its layout; the message names the file and line."""


# --- LibriSpeech ---------------------------------------------------------------------------


def librispeech_subsets(root: str | Path) -> list[str]:
    """Subset folders under `root` (any name: train/, dev-clean-2/, ...) holding transcripts.

    A downloaded archive nests them under `LibriSpeech/`; both layouts are accepted.
    """
    root = _librispeech_root(Path(root))
    return sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob("*/*/*.trans.txt")))


def _librispeech_root(root: Path) -> Path:
    if not root.is_dir():
        raise CorpusError(f"{root}: no such corpus folder")
    nested = root / "LibriSpeech"
    return nested if nested.is_dir() else root


def _find_audio(folder: Path, utt_id: str) -> Path | None:
    for ext in _LIBRI_EXTENSIONS:
        path = folder / f"{utt_id}{ext}"
        if path.is_file():
            return path
    return None


def _read_trans(trans: Path) -> list[Utterance]:
    """One chapter's `<speaker>-<chapter>.trans.txt` -> its utterances."""
    speaker = trans.parent.parent.name
    utterances = []
    for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        utt_id, _, text = line.strip().partition(" ")
        if not text:
            raise CorpusError(f"{trans}:{lineno}: expected '<utterance-id> <TRANSCRIPT>'")
        audio = _find_audio(trans.parent, utt_id)
        if audio is None:
            raise CorpusError(
                f"{trans}:{lineno}: no audio file {utt_id}{{{','.join(_LIBRI_EXTENSIONS)}}}"
            )
        utterances.append(_utterance(audio, text, utt_id, speaker, f"{trans}:{lineno}"))
    return utterances


def _utterance(audio: Path, text: str, utt_id: str, speaker: str, where: str) -> Utterance:
    try:
        info = audio_info(audio)
    except AudioError as err:
        raise CorpusError(f"{where}: {err}") from err
    return Utterance(str(audio.resolve()), info.duration, text, utt_id, speaker)


def _check_untranscribed(subset_dir: Path, utterances: Sequence[Utterance]) -> None:
    known = {u.id for u in utterances}
    extra = [
        p for ext in _LIBRI_EXTENSIONS for p in subset_dir.rglob(f"*{ext}") if p.stem not in known
    ]
    if extra:
        log.warning(
            "%s: %d audio file(s) have no transcript and are not in the manifest (first: %s)",
            subset_dir,
            len(extra),
            sorted(extra)[0],
        )


def import_librispeech(root: str | Path, subset: str) -> list[Utterance]:
    """`<root>/<subset>/<speaker>/<chapter>/*.trans.txt` -> utterances sorted by id."""
    subset_dir = _librispeech_root(Path(root)) / subset
    transcripts = sorted(subset_dir.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise CorpusError(f"{subset_dir}: no <speaker>/<chapter>/*.trans.txt files")
    utterances = [u for trans in transcripts for u in _read_trans(trans)]
    _check_untranscribed(subset_dir, utterances)
    return sorted(utterances, key=lambda u: u.id)


# --- Common Voice ----------------------------------------------------------------------------


def import_commonvoice(root: str | Path, split: str) -> list[Utterance]:
    """`<root>/<split>.tsv` (columns client_id, path, sentence, ...) with `<root>/clips/`."""
    root = Path(root)
    tsv = root / f"{split}.tsv"
    if not tsv.is_file():
        raise CorpusError(f"{tsv}: no such Common Voice split")
    utterances = []
    with tsv.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"path", "sentence"} - set(reader.fieldnames or [])
        if missing:
            raise CorpusError(f"{tsv}:1: header lacks column(s) {sorted(missing)}")
        for lineno, row in enumerate(reader, start=2):
            where = f"{tsv}:{lineno}"
            if not row["path"] or row["sentence"] is None:
                raise CorpusError(f"{where}: empty path or sentence")
            audio = root / "clips" / row["path"]
            speaker = row.get("client_id") or ""
            utterances.append(_utterance(audio, row["sentence"], audio.stem, speaker, where))
    return utterances


# --- LJ Speech -------------------------------------------------------------------------------


def import_ljspeech(root: str | Path) -> list[Utterance]:
    """`<root>/metadata.csv` (`id|text|normalized text`) with `<root>/wavs/<id>.wav`."""
    root = Path(root)
    metadata = root / "metadata.csv"
    if not metadata.is_file():
        raise CorpusError(f"{metadata}: no such file (expected the LJ Speech layout)")
    utterances = []
    lines = metadata.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) < 2 or not fields[0]:
            raise CorpusError(f"{metadata}:{lineno}: expected 'id|text|normalized text'")
        # The third column spells out numbers and abbreviations: closer to what is spoken.
        text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
        audio = root / "wavs" / f"{fields[0]}.wav"
        utterances.append(_utterance(audio, text, fields[0], "LJ", f"{metadata}:{lineno}"))
    return utterances


# --- Kaldi data dir --------------------------------------------------------------------------


def _read_kaldi_table(path: Path) -> dict[str, tuple[str, int]]:
    """`<key> <value...>` lines -> {key: (value, line number)}; duplicates are errors.

    Key and value are split at the first run of whitespace, spaces or tabs (Kaldi's tools
    accept both; speechocean762's `text` uses a tab).
    """
    table: dict[str, tuple[str, int]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        key, value = (line.split(maxsplit=1) + [""])[:2]
        if key in table:
            raise CorpusError(
                f"{path}:{lineno}: duplicate id {key!r} (first on line {table[key][1]})"
            )
        table[key] = (value.strip(), lineno)
    return table


def _wav_path(value: str, where: str, data_dir: Path) -> Path:
    if value.endswith("|"):
        raise CorpusError(
            f"{where}: piped commands in wav.scp are not supported; convert the audio to "
            f"files first (e.g. with sox) and list their paths"
        )
    path = Path(value)
    if path.is_absolute():
        return path
    # Kaldi resolves a relative path from where the recipe runs: the data dir itself, or the
    # corpus folder above it (speechocean762: `WAVE/SPEAKER0036/...` beside `train/`).
    candidates = [data_dir / path, data_dir.parent / path]
    return next((c for c in candidates if c.exists()), candidates[0])


def import_kaldi(data_dir: str | Path, segments_dir: str | Path | None = None) -> list[Utterance]:
    """A Kaldi data dir: `wav.scp`, `text`, optional `utt2spk` and `segments`.

    With `segments`, each segment is cut from its recording into `<segments_dir>/<utt>.wav`
    (the manifest format has no offsets), which `segments_dir` must then be given for.
    """
    data_dir = Path(data_dir)
    for name in ("wav.scp", "text"):
        if not (data_dir / name).is_file():
            raise CorpusError(f"{data_dir / name}: no such file (expected a Kaldi data dir)")
    wavs = _read_kaldi_table(data_dir / "wav.scp")
    texts = _read_kaldi_table(data_dir / "text")
    spk_file = data_dir / "utt2spk"
    speakers = _read_kaldi_table(spk_file) if spk_file.is_file() else {}
    if (data_dir / "segments").is_file():
        if segments_dir is None:
            raise CorpusError(f"{data_dir / 'segments'}: cutting segments needs an output folder")
        return _kaldi_segments(data_dir, wavs, texts, speakers, Path(segments_dir))
    utterances = []
    for utt_id, (text, lineno) in texts.items():
        where = f"{data_dir / 'text'}:{lineno}"
        if utt_id not in wavs:
            raise CorpusError(f"{where}: utterance {utt_id!r} is not in wav.scp")
        value, wav_line = wavs[utt_id]
        audio = _wav_path(value, f"{data_dir / 'wav.scp'}:{wav_line}", data_dir)
        speaker = speakers.get(utt_id, ("", 0))[0]
        utterances.append(_utterance(audio, text, utt_id, speaker, where))
    return utterances


# What a segment id may be to become <segments_dir>/<id>.wav: no separators, no "..".
_SAFE_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")


def _kaldi_segments(
    data_dir: Path,
    wavs: dict[str, tuple[str, int]],
    texts: dict[str, tuple[str, int]],
    speakers: dict[str, tuple[str, int]],
    out_dir: Path,
) -> list[Utterance]:
    segments = data_dir / "segments"
    out_dir.mkdir(parents=True, exist_ok=True)
    utterances = []
    loaded: dict[Path, tuple[np.ndarray, int]] = {}  # the current recording, decoded once
    for utt_id, (value, lineno) in _read_kaldi_table(segments).items():
        where = f"{segments}:{lineno}"
        fields = value.split()
        if len(fields) != 3:
            raise CorpusError(f"{where}: expected '<utt> <recording> <start> <end>'")
        if fields[0] not in wavs:
            raise CorpusError(f"{where}: recording {fields[0]!r} is not in wav.scp")
        if utt_id not in texts:
            raise CorpusError(f"{where}: utterance {utt_id!r} has no line in text")
        if not _SAFE_NAME.fullmatch(utt_id):  # it becomes a file name below
            raise CorpusError(
                f"{where}: segment id {utt_id!r} cannot be a file name (letters, digits, "
                "'.', '_' and '-' only, not starting with '.')"
            )
        try:
            start, end = float(fields[1]), float(fields[2])
        except ValueError as err:
            raise CorpusError(f"{where}: start and end must be seconds ({err})") from err
        recording = _wav_path(wavs[fields[0]][0], f"{data_dir / 'wav.scp'}", data_dir)
        if recording not in loaded:
            loaded = {recording: _load_recording(recording, where)}
        audio = _cut_segment(loaded[recording], start, end, out_dir / f"{utt_id}.wav", where)
        speaker = speakers.get(utt_id, ("", 0))[0]
        utterances.append(_utterance(audio, texts[utt_id][0], utt_id, speaker, where))
    return utterances


def _load_recording(recording: Path, where: str) -> tuple[np.ndarray, int]:
    """(waveform (S,) at the file's own rate, that rate)."""
    try:
        rate = audio_info(recording).sample_rate
        return load_audio(recording, rate), rate
    except AudioError as err:
        raise CorpusError(f"{where}: {err}") from err


def _cut_segment(
    recording: tuple[np.ndarray, int], start: float, end: float, out: Path, where: str
) -> Path:
    waveform, rate = recording
    first, last = int(round(start * rate)), int(round(end * rate))
    if not 0 <= first < last <= len(waveform) + rate // 100:
        raise CorpusError(
            f"{where}: segment {start}-{end} s lies outside the recording "
            f"({len(waveform) / rate:.2f} s)"
        )
    if not out.is_file():
        tmp = out.with_suffix(".tmp.wav")
        sf.write(tmp, np.asarray(waveform[first:last]), rate, subtype="PCM_16")
        tmp.replace(out)
    return out


# --- filtering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DurationFilter:
    min_duration: float = option(0.0, "drop shorter utterances (seconds)")
    max_duration: float = option(float("inf"), "drop longer utterances (seconds)")

    def __post_init__(self) -> None:
        # NaN compares false both ways: it would keep everything without a word
        for name in ("min_duration", "max_duration"):
            value = getattr(self, name)
            if math.isnan(value) or value < 0:
                raise CorpusError(f"--{name.replace('_', '-')} must be a number >= 0, got {value}")
        if self.min_duration > self.max_duration:
            raise CorpusError(
                f"--min-duration {self.min_duration} is above --max-duration {self.max_duration}"
            )


def filter_by_duration(
    utterances: Iterable[Utterance], limits: DurationFilter
) -> tuple[list[Utterance], list[tuple[Utterance, str]]]:
    """(kept, [(dropped utterance, reason)]) by duration."""
    kept, dropped = [], []
    for utt in utterances:
        if utt.duration < limits.min_duration:
            dropped.append((utt, f"duration {utt.duration:.2f} s < {limits.min_duration} s"))
        elif utt.duration > limits.max_duration:
            dropped.append((utt, f"duration {utt.duration:.2f} s > {limits.max_duration} s"))
        else:
            kept.append(utt)
    return kept, dropped


# --- the importers by name, as `asr data prepare` runs them ----------------------------------


@dataclass(frozen=True)
class Corpus:
    """A corpus layout `asr data prepare <name>` reads: its importer and what it takes."""

    # (root, parts or None, manifest name or None, folder for the manifests) ->
    # {manifest name: utterances}
    read: Callable[[Path, Sequence[str] | None, str | None, Path], dict[str, list[Utterance]]]
    summary: str  # the layout, one line for --help
    parts: str = ""  # option naming the parts to import ("subsets", "splits"); "": one part
    parts_help: str = ""
    named: bool = True  # takes a manifest name (--name)
    # fetches parts into the root (parts None: the default ones) and returns their names
    download: Callable[[Path, Sequence[str] | None, str | None], list[str]] | None = None


def _read_librispeech(root, parts, name, out_dir) -> dict[str, list[Utterance]]:
    subsets = parts or librispeech_subsets(root)
    if not subsets:
        raise CorpusError(f"{root}: no LibriSpeech subset folders found")
    return {s: import_librispeech(root, s) for s in subsets}


def _download_librispeech(root, parts, mirror) -> list[str]:
    from asr.corpora.download import download_librispeech

    subsets = list(parts or ["train-clean-5", "dev-clean-2"])  # Mini LibriSpeech
    for subset in subsets:
        download_librispeech(subset, root, mirror)
    return subsets


def _read_commonvoice(root, parts, name, out_dir) -> dict[str, list[Utterance]]:
    splits = parts or ["train", "dev", "test"]
    return {f"{name}_{s}" if name else s: import_commonvoice(root, s) for s in splits}


def _read_ljspeech(root, parts, name, out_dir) -> dict[str, list[Utterance]]:
    return {name or "ljspeech": import_ljspeech(root)}


def _read_kaldi(root, parts, name, out_dir) -> dict[str, list[Utterance]]:
    name = name or root.name
    return {name: import_kaldi(root, out_dir / f"{name}_segments")}


CORPORA = {
    "librispeech": Corpus(
        _read_librispeech,
        "LibriSpeech or Mini LibriSpeech: <subset>/<speaker>/<chapter>/*.trans.txt",
        "subsets",
        "subset folders (default: every one under --root; with --download: the Mini "
        "LibriSpeech subsets train-clean-5 dev-clean-2)",
        named=False,
        download=_download_librispeech,
    ),
    "commonvoice": Corpus(
        _read_commonvoice,
        "Common Voice: <split>.tsv and clips/",
        "splits",
        "the <split>.tsv files (default: train dev test)",
    ),
    "ljspeech": Corpus(_read_ljspeech, "LJ Speech: metadata.csv and wavs/"),
    "kaldi": Corpus(_read_kaldi, "a Kaldi data dir: wav.scp, text, optional utt2spk, segments"),
}


@dataclass
class PreparedManifest:
    path: Path  # the manifest written
    utterances: int  # entries kept
    hours: float  # their audio
    speakers: int  # distinct speakers among them
    dropped: int  # entries the duration filter left out
    dropped_file: Path | None  # <name>.dropped.tsv listing them, when there are any


def prepare_corpus(
    corpus: str,
    root: str | Path,
    out_dir: str | Path,
    parts: Sequence[str] | None = None,
    name: str | None = None,
    limits: DurationFilter = DurationFilter(),
    download: bool = False,
    mirror: str | None = None,
) -> list[PreparedManifest]:
    """Import corpus `corpus` (a name in CORPORA) from `root` and write <out_dir>/<name>.jsonl
    per part, utterances outside `limits` listed in <name>.dropped.tsv beside it.

    parts: the subsets or splits to import (None: the corpus's default); name: the manifest
    name where the corpus takes one; download: fetch the parts into `root` first (mirror:
    another base URL), for the corpora that can.
    """
    spec = CORPORA[corpus]
    root, out_dir = Path(root), Path(out_dir)
    if download:
        if spec.download is None:
            raise CorpusError(f"{corpus} cannot be downloaded; fetch it into {root} yourself")
        parts = spec.download(root, parts, mirror)
    prepared = []
    for manifest, utterances in spec.read(root, parts, name, out_dir).items():
        kept, dropped = filter_by_duration(utterances, limits)
        path = out_dir / f"{manifest}.jsonl"
        write_manifest(path, kept)
        dropped_path = out_dir / f"{manifest}.dropped.tsv" if dropped else None
        if dropped_path is not None:
            write_dropped(dropped_path, dropped)
        hours = sum(u.duration for u in kept) / 3600
        speakers = len({u.speaker for u in kept})
        prepared.append(
            PreparedManifest(path, len(kept), hours, speakers, len(dropped), dropped_path)
        )
    return prepared
