"""Manifest checks: every problem an entry can bring into training, with its line and file.

    asr data check data/manifests/mini/train.jsonl --write-clean data/manifests/clean.jsonl

Each entry's audio is decoded once (no resampling) to find missing, unreadable, empty,
truncated, corrupt and silent files and NaN or infinite samples; the header is compared
with what the manifest says (duration, and `sample_rate` / `channels` where the line
gives them); the normalized transcript must be spellable by the vocabulary and fit the
model's output frames.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    AudioError,
    AudioInfo,
    audio_info,
    decoded_blocks,
    wav_declared_frames,
)
from asr.config import ConfigError
from asr.frames import ctc_min_frames, subsampled_length
from asr.logmel import FeatureConfig, frame_count
from asr.manifest import (
    ManifestError,
    Utterance,
    manifest_lines,
    parse_manifest_line,
    write_dropped,
    write_manifest,
)
from asr.text import Vocabulary, normalize_text

__all__ = ["CheckConfig", "CheckReport", "Problem", "check_config", "check_manifest", "write_clean"]


def _flag(default, help: str):
    """A CheckConfig field with a command-line flag: its default and the flag's help."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class CheckConfig:
    vocab: Vocabulary = field(default_factory=Vocabulary.english)  # symbols the model can emit
    hop_length: int = FeatureConfig.hop_length  # feature frame shift in samples
    feature_rate: int = FeatureConfig.sample_rate  # sample rate features are computed at
    subsampling: int = 4  # the model's time reduction (model.subsampling)
    # The fields below are `asr data check`'s flags, their help in the metadata.
    sample_rate: int = _flag(0, "every file's rate (0: only where a line declares one)")
    channels: int = _flag(0, "every file's channels (0: only where a line declares them)")
    duration_tolerance: float = _flag(0.1, "seconds the manifest may differ from the file")
    silence_dbfs: float = _flag(-60.0, "a clip whose peak stays below this is silent")
    jobs: int = _flag(1, "worker processes decoding audio")

    def __post_init__(self) -> None:  # `not low <= x`: NaN is in no range
        ranges = {
            "sample_rate": (0, MAX_SAMPLE_RATE),
            "channels": (0, MAX_CHANNELS),
            "duration_tolerance": (0.0, 3600.0),
            "silence_dbfs": (-200.0, 0.0),
            "jobs": (1, 256),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not low <= value <= high:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be in [{low:g}, {high:g}], got {value}")


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based manifest line
    audio_filepath: str  # the file concerned ("" when the line could not be parsed)
    kind: str  # short tag: missing, unreadable, truncated, duration, vocabulary, ...
    message: str  # what is wrong, with the values found

    def __str__(self) -> str:
        return f"line {self.line}: {self.audio_filepath or '-'}: {self.kind}: {self.message}"


@dataclass
class CheckReport:
    manifest: str  # the manifest checked
    entries: list[tuple[int, Utterance | None]]  # (line, parsed entry or None when unparsable)
    problems: list[Problem]  # every problem found, by line

    @property
    def bad_lines(self) -> set[int]:
        return {p.line for p in self.problems}

    @property
    def summary(self) -> str:
        """One line: entries, how many have problems, and the count of each kind."""
        kinds = Counter(p.kind for p in self.problems)
        found = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()) or "no problems"
        return f"{len(self.entries)} entries, {len(self.bad_lines)} with problems: {found}"


def check_config(experiment: str | Path | None = None, **fields) -> CheckConfig:
    """A CheckConfig with the frame rate of an experiment TOML (features.hop_length,
    features.sample_rate, model.subsampling; without one the built-in defaults, which are
    CheckConfig's own) and `fields` (sample_rate, jobs, ...) set."""
    if experiment is None:
        return CheckConfig(**fields)
    from asr.config import load_toml_section
    from asr.logmel import FeatureConfig
    from asr.model_config import ModelConfig

    feats = load_toml_section(FeatureConfig, experiment, "features")
    model = load_toml_section(ModelConfig, experiment, "model")
    rate = {"hop_length": feats.hop_length, "feature_rate": feats.sample_rate}
    return CheckConfig(**rate, subsampling=model.subsampling, **fields)


def output_frames(duration: float, cfg: CheckConfig) -> int:
    """Model output frames for `duration` seconds (as AcousticModel.output_lengths)."""
    frames = frame_count(int(round(duration * cfg.feature_rate)), cfg.hop_length)
    return subsampled_length(frames, cfg.subsampling)


def _check_text(utt: Utterance, cfg: CheckConfig) -> list[tuple[str, str]]:
    text = normalize_text(utt.text)
    found = []
    if not text:
        found.append(("empty-text", "the transcript is empty after normalization"))
    unknown = cfg.vocab.find_unknown(text)
    if unknown:
        found.append(("vocabulary", f"characters outside the vocabulary: {sorted(unknown)!r}"))
    needed, frames = ctc_min_frames(text), output_frames(utt.duration, cfg)
    if needed > frames:
        found.append(
            (
                "too-long",
                f"transcript needs {needed} output frames, {utt.duration:.2f} s of audio gives "
                f"{frames} at subsampling {cfg.subsampling}",
            )
        )
    return found


def _check_header(info: AudioInfo, utt: Utterance, record: dict, cfg: CheckConfig) -> list:
    """Header against the manifest line and the expected format: (kind, message) pairs."""
    found = []
    for key, actual, expected in (
        ("sample_rate", info.sample_rate, cfg.sample_rate),
        ("channels", info.channels, cfg.channels),
    ):
        if key in record and record[key] != actual:
            found.append((key, f"manifest says {record[key]}, the file has {actual}"))
        elif key not in record and expected and expected != actual:
            flag = "--" + key.replace("_", "-")
            found.append((key, f"expected {expected} ({flag}), the file has {actual}"))
    if abs(info.duration - utt.duration) > cfg.duration_tolerance:
        message = f"manifest says {utt.duration:.3f} s, the file holds {info.duration:.3f} s"
        found.append(("duration", message))
    return found


def _check_samples(path: Path, info: AudioInfo, cfg: CheckConfig) -> tuple[str, str] | None:
    """Decode the file: (kind, message) for a truncated, corrupt, empty or silent one."""
    declared = wav_declared_frames(path)
    if declared is not None and declared > info.frames:
        return "truncated", f"the header promises {declared} frames, the file holds {info.frames}"
    decoded, peak, error = _decode_peak(path)
    if not math.isfinite(peak):
        return "nonfinite", f"NaN or infinite samples (after {decoded} frames)"
    if error:
        return "corrupt", f"decoding fails after {decoded} of {info.frames} frames ({error})"
    if decoded == 0:
        return "empty", "the file holds no audio samples"
    # Compressed formats may report an approximate frame count; PCM headers are exact.
    if decoded < 0.99 * info.frames:
        return "truncated", f"the header promises {info.frames} frames, {decoded} decode"
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < cfg.silence_dbfs:
        return "silent", f"peak level {peak_db:.1f} dBFS < {cfg.silence_dbfs} dBFS"
    return None


def _check_audio(utt: Utterance, record: dict, cfg: CheckConfig) -> list[tuple[str, str]]:
    """Problems of one entry's audio file: (kind, message) pairs."""
    path = Path(utt.audio_filepath)
    if not path.exists():
        return [("missing", "no such audio file")]
    try:
        info = audio_info(path)
    except AudioError as err:
        return [("unreadable", str(err).removeprefix(f"{path}: "))]
    found = _check_header(info, utt, record, cfg)
    sample_problem = _check_samples(path, info, cfg)
    return found + [sample_problem] if sample_problem else found


def _decode_peak(path: Path) -> tuple[int, float, str]:
    """Decode block by block: (frames decoded, peak |sample|, error message or "")."""
    decoded, peak = 0, 0.0
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            for block in decoded_blocks(f, 1 << 16):  # what was decoded, not what was promised
                decoded += block.shape[0]
                if block.size and not np.isfinite(block).all():
                    return decoded, math.nan, ""
                if block.size:
                    peak = max(peak, float(np.abs(block).max()))
    except Exception as err:  # libsndfile raises several types for undecodable data
        return decoded, peak, str(err).strip()
    return decoded, peak, ""


def _check_entry(args: tuple[Utterance, dict, CheckConfig]) -> list[Problem]:
    utt, record, cfg = args
    found = _check_text(utt, cfg) + _check_audio(utt, record, cfg)
    return [Problem(utt.line, utt.audio_filepath, kind, msg) for kind, msg in found]


def _parse(manifest: Path) -> tuple[list[tuple[int, Utterance | None, dict]], list[Problem]]:
    entries, problems = [], []
    for lineno, raw in manifest_lines(manifest):
        try:
            utt = parse_manifest_line(raw, lineno, manifest.resolve())
        except ManifestError as err:
            problems.append(Problem(lineno, "", "malformed", str(err).split(": ", 1)[-1]))
            entries.append((lineno, None, {}))
            continue
        entries.append((lineno, utt, json.loads(raw)))
    return entries, problems


def _duplicates(entries: Sequence[tuple[int, Utterance | None, dict]]) -> list[Problem]:
    first_line: dict[str, int] = {}
    problems = []
    for lineno, utt, _ in entries:
        if utt is None:
            continue
        if utt.id in first_line:
            problems.append(
                Problem(
                    lineno,
                    utt.audio_filepath,
                    "duplicate-id",
                    f"id {utt.id!r} already on line {first_line[utt.id]}",
                )
            )
        else:
            first_line[utt.id] = lineno
    return problems


def check_manifest(manifest: str | Path, cfg: CheckConfig | None = None) -> CheckReport:
    """Check every entry of `manifest`; problems are sorted by line."""
    cfg = cfg or CheckConfig()
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest")
    entries, problems = _parse(manifest)
    problems += _duplicates(entries)
    tasks = [(utt, record, cfg) for _, utt, record in entries if utt is not None]
    if cfg.jobs > 1:
        with Pool(cfg.jobs) as pool:
            results = pool.map(_check_entry, tasks, chunksize=8)
    else:
        results = [_check_entry(task) for task in tasks]
    problems += [p for found in results for p in found]
    problems.sort(key=lambda p: p.line)
    return CheckReport(str(manifest), [(line, utt) for line, utt, _ in entries], problems)


def write_clean(report: CheckReport, out: str | Path) -> tuple[Path, Path]:
    """Write the entries without problems to `out` and every dropped line with its reasons
    to `<out stem>.dropped.tsv`; returns both paths."""
    out = Path(out)
    reasons: dict[int, list[str]] = {}
    for p in report.problems:
        reasons.setdefault(p.line, []).append(f"{p.kind}: {p.message}")
    kept = [utt for line, utt in report.entries if utt is not None and line not in reasons]
    dropped = []
    for line, utt in report.entries:
        if line in reasons:
            utt = utt or Utterance("", 0.0, "", id="", line=line)
            dropped.append((utt, "; ".join(reasons[line])))
    write_manifest(out, kept)
    dropped_path = out.with_name(out.stem + ".dropped.tsv")
    write_dropped(dropped_path, dropped)
    return out, dropped_path
