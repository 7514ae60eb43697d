"""Manifests (JSON lines, NeMo's convention), the speech dataset, batching and padding.

A manifest line is `{"audio_filepath": ..., "duration": seconds, "text": ...}`, optionally
with "id" and "speaker". Relative paths resolve against the manifest's folder.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from asr.audio import AudioError, audio_info, load_audio
from asr.text import Vocabulary, normalize_text

__all__ = [
    "DataConfig",
    "ManifestError",
    "SpeechDataset",
    "SortedBatchSampler",
    "Utterance",
    "collate",
    "find_unreadable",
    "parse_manifest_line",
    "read_manifest",
    "write_dropped",
    "write_manifest",
]

log = logging.getLogger(__name__)

_REQUIRED = ("audio_filepath", "duration", "text")


@dataclass
class DataConfig:
    train_manifest: str = ""  # JSON-lines manifest to train on
    valid_manifest: str = ""  # JSON-lines manifest for validation loss and WER each epoch
    batch_size: int = 16  # utterances per batch
    num_workers: int = 2  # audio-loading worker processes (0: load in the main process)
    max_duration: float = 30.0  # seconds; longer training utterances are skipped and counted
    sort_window: int = 50  # batches drawn from one shuffled window, sorted by duration
    skip_unreadable: bool = False  # skip (and report) entries with unreadable audio, not fail
    max_batch_seconds: float = 0.0  # >0: batches of this much padded audio, not batch_size
    num_buckets: int = 30  # duration buckets of dynamic batching (batches never mix buckets)


class ManifestError(ValueError):
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
        record = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{where}: not valid JSON ({err.msg})") from err
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {missing}")
    duration = record["duration"]
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0:
        raise ManifestError(f"{where}: duration must be a non-negative number, got {duration!r}")
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


def read_manifest(path: str | Path) -> list[Utterance]:
    """All utterances of a manifest; a malformed line raises ManifestError with its number."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    utterances = []
    with path.open(encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            if raw.strip():
                utterances.append(parse_manifest_line(raw, lineno, path.resolve()))
    return utterances


def write_manifest(path: str | Path, utterances: Sequence[Utterance]) -> None:
    """Write utterances as JSON lines, paths relative to the manifest where they lie below it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.parent.resolve()
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for utt in utterances:
            f.write(json.dumps(utt.to_json(root), ensure_ascii=False) + "\n")
    tmp.replace(path)


def write_dropped(path: str | Path, dropped: Sequence[tuple[Utterance, str]]) -> None:
    """A TSV of dropped entries: manifest line (0 when none), id, audio file, reason."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
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


def prepare_targets(utterances: Sequence[Utterance], vocab: Vocabulary) -> list[list[int]]:
    """Normalize and encode transcripts. Characters the vocabulary lacks are logged with
    counts and an example line, then left out of the target."""
    unknown: Counter[str] = Counter()
    examples: dict[str, Utterance] = {}
    targets = []
    for utt in utterances:
        text = normalize_text(utt.text)
        missing = vocab.find_unknown(text)
        for ch in missing:
            unknown[ch] += text.count(ch)
            examples.setdefault(ch, utt)
        targets.append(vocab.encode("".join(ch for ch in text if ch not in missing)))
    for ch, count in unknown.most_common():
        utt = examples[ch]
        log.warning(
            "character %r outside the vocabulary: %d occurrence(s) removed from targets "
            "(first in %s, manifest line %d)",
            ch,
            count,
            utt.audio_filepath,
            utt.line,
        )
    return targets


class SpeechDataset(Dataset):
    """Utterances -> (waveform (S,), target ids (U,)) at the feature sample rate, plus the
    auxiliary (phone) target ids (U_aux,) when `aux_targets` are given."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        vocab: Vocabulary,
        sample_rate: int,
        aux_targets: Sequence[Sequence[int]] | None = None,
    ):
        self.utterances = list(utterances)
        self.targets = prepare_targets(self.utterances, vocab)
        self.sample_rate = sample_rate
        if aux_targets is not None and len(aux_targets) != len(self.utterances):
            raise ValueError(f"{len(aux_targets)} aux targets for {len(self.utterances)} utts")
        self.aux_targets = aux_targets

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        waveform = load_audio(self.utterances[index].audio_filepath, self.sample_rate)
        item = (torch.from_numpy(waveform), torch.tensor(self.targets[index], dtype=torch.long))
        if self.aux_targets is None:
            return item
        return (*item, torch.tensor(self.aux_targets[index], dtype=torch.long))


@dataclass
class Batch:
    waveforms: torch.Tensor  # (B, S) zero-padded
    wave_lens: torch.Tensor  # (B,) samples
    targets: torch.Tensor  # (B, U) zero-padded token ids
    target_lens: torch.Tensor  # (B,)
    aux_targets: torch.Tensor | None = None  # (B, U_aux) zero-padded phone ids, if any
    aux_target_lens: torch.Tensor | None = None  # (B,)

    def pin_memory(self) -> Batch:
        return Batch(*(t.pin_memory() for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        main = (self.waveforms, self.wave_lens, self.targets, self.target_lens)
        if self.aux_targets is None:
            return main
        return (*main, self.aux_targets, self.aux_target_lens)


def pad_sequences(items: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D tensors -> (B, max_len) zero-padded, (B,) lengths."""
    lens = torch.tensor([len(x) for x in items], dtype=torch.long)
    padded = torch.zeros(len(items), int(lens.max()) if len(items) else 0, dtype=items[0].dtype)
    for i, x in enumerate(items):
        padded[i, : len(x)] = x
    return padded, lens


def collate(items: Sequence[tuple[torch.Tensor, ...]]) -> Batch:
    """(waveform, targets[, aux_targets]) items -> one padded Batch."""
    padded = [t for column in zip(*items, strict=True) for t in pad_sequences(column)]
    return Batch(*padded)


class SortedBatchSampler(Sampler[list[int]]):
    """Batches of similar duration: shuffle, sort each window of `sort_window` batches by
    duration, cut it into batches, shuffle the batches. Seeded per epoch."""

    def __init__(
        self, durations: Sequence[float], batch_size: int, sort_window: int = 50, seed: int = 0
    ):
        self.durations = np.asarray(durations)
        self.batch_size = batch_size
        self.window = batch_size * max(1, sort_window)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.durations) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        order = list(range(len(self.durations)))
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), self.window):
            window = sorted(order[start : start + self.window], key=lambda i: self.durations[i])
            batches += [
                window[i : i + self.batch_size] for i in range(0, len(window), self.batch_size)
            ]
        rng.shuffle(batches)
        return iter(batches)
