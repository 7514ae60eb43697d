"""Transcribing a batch of files where one bad file costs only itself.

    report = transcribe_files(recognizer, paths, options, "txt", out_dir="out/")

The one place where a bad file is isolated (`asr transcribe` and `asr evaluate` both ride
it). Every file is read and decoded on its own terms: a file that cannot be read
(unreadable, truncated, NaN samples, permission denied) is recorded with its reason and the
rest go on; `BatchReport.outcomes` says, input by input, which it was.
Output paths are planned (`formats.plan_outputs`) and checked before any audio is decoded,
and each transcript is written as soon as it is done, so an interruption keeps what was
finished. On a terminal a tqdm bar shows files done, audio seconds and the real-time factor.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from asr.audio import AudioError, audio_info
from asr.decode import DecodingOptions
from asr.inference import formats
from asr.inference.segment import SegmentConfig

if TYPE_CHECKING:  # recognizer.py does not import this module; the type alone is needed
    from asr.inference.recognizer import Recognizer, Transcript

__all__ = ["BatchReport", "transcribe_files"]


@dataclass
class BatchReport:
    paths: list[Path]  # the inputs, in order
    # per input: its transcript, or the reason it could not be transcribed
    outcomes: list[Transcript | str | None]
    written: list[Path] = field(default_factory=list)  # output files (with out_dir)
    audio_seconds: float = 0.0  # audio transcribed
    seconds: float = 0.0  # wall-clock time

    @property
    def transcripts(self) -> list[Transcript]:
        """Of each good file, in input order."""
        return [o for o in self.outcomes if o is not None and not isinstance(o, str)]

    @property
    def failures(self) -> list[tuple[Path, str]]:
        """(file, reason) of each bad file, in input order."""
        return [
            (p, o) for p, o in zip(self.paths, self.outcomes, strict=True) if isinstance(o, str)
        ]

    @property
    def summary(self) -> str:
        rtf = self.seconds / self.audio_seconds if self.audio_seconds else 0.0
        files = len(self.transcripts) + len(self.failures)
        return (
            f"{len(self.transcripts)} of {files} files transcribed, {len(self.failures)} failed; "
            f"{self.audio_seconds:.1f} s of audio in {self.seconds:.1f} s (real-time factor "
            f"{rtf:.3f})"
        )


def transcribe_files(
    recognizer: Recognizer,
    paths: Sequence[str | Path],
    options: DecodingOptions | None = None,
    output_format: str = "txt",
    out_dir: str | Path | None = None,
    batch_size: int = 8,
    segment: SegmentConfig = SegmentConfig(),
    progress: bool | None = None,
) -> BatchReport:
    """Transcribe `paths` with `recognizer`, each bad file's reason recorded in `outcomes`
    rather than raised. With `out_dir`, each transcript is written there in `output_format`
    (paths planned, and the folder checked, before any decoding). progress: a tqdm bar on
    stderr; None: only when stderr is a terminal. options: None, the recognizer's own."""
    options = recognizer.default_options if options is None else options
    paths = [Path(p) for p in paths]
    outputs = formats.plan_outputs(paths, output_format, out_dir) if out_dir else None
    timed = formats.FORMATS[output_format].timed
    report, start = BatchReport(paths, [None] * len(paths)), time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(paths), desc="transcribe", unit="file", disable=not show) as bar:
        for group in _groups(paths, batch_size, segment, report):
            for i, transcript in _run_group(
                recognizer, group, options, batch_size, timed, segment, report
            ):
                report.outcomes[i] = transcript
                report.audio_seconds += transcript.duration
                if outputs is not None:
                    report.written.append(
                        formats.write_transcript(transcript, output_format, outputs[i], options)
                    )
            _show_progress(bar, report, start)
        _show_progress(bar, report, start)  # files failed after the last group
    report.seconds = time.perf_counter() - start
    return report


def _show_progress(bar: tqdm, report: BatchReport, start: float) -> None:
    """Files done (failed ones count too), audio seconds, real-time factor."""
    bar.update(sum(o is not None for o in report.outcomes) - bar.n)
    report.seconds = time.perf_counter() - start
    rtf = report.seconds / max(report.audio_seconds, 1e-9)
    bar.set_postfix(audio=f"{report.audio_seconds:.0f}s", rtf=f"{rtf:.3f}")


def _groups(paths: list[Path], batch_size: int, segment: SegmentConfig, report: BatchReport):
    """Lists of (index, path, duration): a long file alone, short files `batch_size` at once;
    files whose header cannot be read are recorded as failed."""
    group: list[tuple[int, Path, float]] = []
    for i, path in enumerate(paths):
        try:
            duration = audio_info(path).duration
        except AudioError as err:
            report.outcomes[i] = _reason(err, path)
            continue
        if duration > segment.max_seconds:
            yield [(i, path, duration)]
            continue
        group.append((i, path, duration))
        if len(group) == batch_size:
            yield group
            group = []
    if group:
        yield group


def _run_group(
    recognizer: Recognizer, group, options, batch_size: int, timed: bool, segment, report
) -> list[tuple[int, Transcript]]:
    """(index, Transcript) for each file of the group that decodes; failures recorded."""
    if len(group) == 1 and group[0][2] > segment.max_seconds:
        i, path, _ = group[0]
        try:
            long = recognizer.transcribe_long(path, options, batch_size, timed, segment)
        except AudioError as err:
            report.outcomes[i] = _reason(err, path)
            return []
        long.source = str(path)
        return [(i, long)]
    good: list[tuple[int, Path]] = []
    waves = []
    for i, path, _ in group:
        try:
            waves.append(recognizer.waveform(path))
            good.append((i, path))
        except AudioError as err:
            report.outcomes[i] = _reason(err, path)
    if not good:
        return []
    results = recognizer.transcribe(waves, options, batch_size, timed, segment)
    for (_, path), result in zip(good, results, strict=True):
        result.source = str(path)
    return [(i, r) for (i, _), r in zip(good, results, strict=True)]


def _reason(err: Exception, path: Path) -> str:
    return str(err).removeprefix(f"{path}: ")
