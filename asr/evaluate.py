"""Scoring a model on a manifest: corpus WER/CER and a per-utterance report.

    import asr
    result = asr.evaluate_manifest(asr.load_model("exp/x"), "dev.jsonl", "exp/x/eval_dev")
    print(result.words.rate, result.chars.rate)

No torch here: on the light install a model's ONNX graph is scored as it transcribes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from asr.decode import DecodingOptions
from asr.files import atomic_write, write_atomic
from asr.inference.batch import transcribe_files
from asr.inference.formats import check_output_dir
from asr.inference.model_folder import model_dir
from asr.inference.recognizer import Recognizer
from asr.manifest import ManifestError, read_manifest
from asr.metrics import ErrorCounts, error_counts, score_utterance
from asr.text import normalize_text

__all__ = ["EvaluationResult", "evaluate_manifest", "report_dir"]


@dataclass
class EvaluationResult:
    manifest: str
    utterances: int
    words: ErrorCounts
    chars: ErrorCounts
    audio_seconds: float
    speakers: dict[str, ErrorCounts] = field(default_factory=dict)  # word counts per speaker
    # utterances that could not be transcribed: (manifest line, audio path, reason); the
    # counts above are over the others
    failures: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """What `asr evaluate` prints: utterances, WER and CER with their counts, WER per
        speaker (where the manifest names speakers)."""
        lines = [f"utterances: {self.utterances}  audio: {self.audio_seconds / 60:.1f} min"]
        for name, c in (("WER", self.words), ("CER", self.chars)):
            counts = f"S={c.substitutions} D={c.deletions} I={c.insertions} N={c.reference_length}"
            lines.append(f"{name} {100 * c.rate:.2f}%  ({counts})")
        if self.speakers:
            rates = (f"{k} {100 * c.rate:.1f}%" for k, c in self.speakers.items())
            lines.append("WER per speaker: " + ", ".join(rates))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "manifest": self.manifest,
            "utterances": self.utterances,
            "wer": self.words.rate,
            "cer": self.chars.rate,
            "words": self.words.to_dict(),
            "chars": self.chars.to_dict(),
            "audio_seconds": self.audio_seconds,
            "speakers": {
                k: {"wer": c.rate, "words": c.to_dict()} for k, c in self.speakers.items()
            },
            "failed": [{"line": n, "audio": a, "reason": r} for n, a, r in self.failures],
        }


def speaker_word_counts(utterances, refs, hyps) -> dict[str, ErrorCounts]:
    """Word error counts of each speaker the manifest names (none where it names none)."""
    by_speaker: dict[str, tuple[list, list]] = {}
    for utt, ref, hyp in zip(utterances, refs, hyps, strict=True):
        if utt.speaker:
            pair = by_speaker.setdefault(utt.speaker, ([], []))
            pair[0].append(ref)
            pair[1].append(hyp)
    return {k: error_counts(r, h, "word") for k, (r, h) in sorted(by_speaker.items())}


def evaluate_manifest(
    recognizer: Recognizer,
    manifest: str | Path,
    out_dir: str | Path | None = None,
    options: DecodingOptions | None = None,
    batch_size: int = 8,
) -> EvaluationResult:
    """Transcribe every utterance of `manifest` with `recognizer` and score it against the
    normalized transcripts: corpus word and character error counts. The hypotheses are the
    spoken words (`Transcript.raw_text`), never the written text: the options decode `raw`.

    options: how to decode; None: the recognizer's own (`resolve_decoding` of its model
    folder, as `asr transcribe` and `load_model().transcribe()` decode). batch_size:
    utterances transcribed together. With `out_dir`: `report.txt` (id, REF, HYP, alignment
    and counts per utterance) and `summary.json` (corpus counts, WER, CER, the options).

        result = evaluate_manifest(asr.load_model(), "dev.jsonl", "eval_dev")
        print(f"WER {100 * result.words.rate:.2f}%")
    """
    options = recognizer.default_options if options is None else options
    options = replace(options, raw=True)  # nothing to write: WER scores the spoken words
    utterances = read_manifest(manifest, allow_empty=False)
    if out_dir is not None:  # before the work: a report that cannot be written loses it
        check_output_dir(out_dir)
    paths = [u.audio_filepath for u in utterances]
    # A bad file costs only itself, as it does `asr transcribe` (asr/inference/batch.py).
    report = transcribe_files(recognizer, paths, options, batch_size=batch_size)
    kept, refs, hyps, failures = [], [], [], []
    for utt, outcome in zip(utterances, report.outcomes, strict=True):
        if isinstance(outcome, str) or outcome is None:
            failures.append((utt.line, utt.audio_filepath, outcome or "not transcribed"))
            continue
        kept.append(utt)
        refs.append(normalize_text(utt.text))
        hyps.append(outcome.raw_text)
    if not kept:
        reasons = "; ".join(f"line {n}: {r}" for n, _, r in failures[:3])
        raise ManifestError(f"{manifest}: no utterance could be transcribed ({reasons})")
    result = EvaluationResult(
        str(manifest),
        len(kept),
        error_counts(refs, hyps, "word"),
        error_counts(refs, hyps, "char"),
        report.audio_seconds,
        speaker_word_counts(kept, refs, hyps),
        failures,
    )
    if out_dir is not None:
        _write_reports(Path(out_dir), kept, refs, hyps, result, options)
    return result


def _write_reports(out_dir, utterances, refs, hyps, result, options) -> None:
    with atomic_write(out_dir / "report.txt") as f:  # whole or not at all; a full disk named
        for utt, ref, hyp in zip(utterances, refs, hyps, strict=True):
            score = score_utterance(ref, hyp)
            w = score.words
            f.write(
                f"id: {utt.id}\n{score.alignment}\n"
                f"words: S={w.substitutions} D={w.deletions} I={w.insertions} "
                f"N={w.reference_length}\n\n"
            )
        for line, audio, reason in result.failures:
            f.write(f"line {line}: {audio}\nnot transcribed, not scored: {reason}\n\n")
    summary = {**result.to_dict(), "decoding": options.to_dict()}
    write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")


def report_dir(manifest: str | Path, model: str | Path | None = None) -> Path:
    """Where `asr evaluate` writes its reports unless told: eval_<manifest name> in the
    model's folder, or in the current folder for the bundled model (model None)."""
    name = f"eval_{Path(manifest).stem}"
    if model is None:
        return Path(name)
    return model_dir(model) / name
