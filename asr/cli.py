"""The `asr` command line: the only module that reads argv or prints.

asr transcribe AUDIO... [--model PATH]
asr evaluate MANIFEST [--model PATH]
asr train --config FILE [--set section.key=value ...] [--exp-dir DIR] [--resume]
asr average EXP_DIR --last N | --best N
asr data tones --out DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from asr.audio import AudioError
from asr.checkpoint import CheckpointError
from asr.config import ConfigError
from asr.data import ManifestError

__all__ = ["main"]

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au"}

log = logging.getLogger("asr")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _model_help() -> str:
    from asr.transcribe import DEFAULT_MODEL

    return f"checkpoint file or experiment folder (default: the bundled model, {DEFAULT_MODEL})"


def _add_decoding_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help=_model_help())
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--decoder", default="greedy", choices=["greedy"], help="CTC decoder")
    parser.add_argument("--batch-size", type=int, default=8, help="files decoded together")


# --- transcribe --------------------------------------------------------------------------


def _add_transcribe(sub) -> None:
    p = sub.add_parser(
        "transcribe",
        help="transcribe audio files",
        description="Transcribe audio files (any format soundfile reads) or folders of them.",
        formatter_class=_Formatter,
    )
    p.add_argument("audio", nargs="+", help="audio files or folders (searched recursively)")
    _add_decoding_args(p)
    p.add_argument(
        "--output-format",
        default="txt",
        choices=["txt", "json"],
        help="txt: one line per file (the transcript alone for a single file, else "
        "'path<TAB>transcript'); json: a list of {audio, text, duration}",
    )
    p.set_defaults(func=_run_transcribe)


def expand_audio_paths(items: list[str]) -> list[Path]:
    """Files as given; folders replaced by the audio files below them, sorted."""
    paths = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                raise AudioError(
                    f"{path}: folder holds no audio files ({sorted(AUDIO_EXTENSIONS)})"
                )
            paths += found
        elif path.exists():
            paths.append(path)
        else:
            raise AudioError(f"{path}: no such file or folder")
    return paths


def _run_transcribe(args) -> int:
    from asr.decode import DecodingOptions
    from asr.transcribe import load_model

    paths = expand_audio_paths(args.audio)
    recognizer = load_model(args.model, args.device)
    options = DecodingOptions(decoder=args.decoder)
    results = recognizer.transcribe(paths, options, args.batch_size)
    if args.output_format == "json":
        records = [{"audio": r.source, "text": r.text, "duration": r.duration} for r in results]
        print(json.dumps(records, indent=2, ensure_ascii=False))
    elif len(results) == 1:
        print(results[0].text)
    else:
        for r in results:
            print(f"{r.source}\t{r.text}")
    return 0


# --- evaluate ----------------------------------------------------------------------------


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="WER and CER of a model on a manifest",
        description="Transcribe a JSON-lines manifest and score it against its transcripts. "
        "Writes report.txt (per-utterance REF/HYP alignment) and summary.json.",
        formatter_class=_Formatter,
    )
    p.add_argument("manifest", help="JSON-lines manifest with audio_filepath, duration, text")
    _add_decoding_args(p)
    p.add_argument(
        "--out-dir",
        default=None,
        help="where report.txt and summary.json go (default: eval_<manifest name> beside "
        "the model, or in the current folder for the bundled model)",
    )
    p.set_defaults(func=_run_evaluate)


def _eval_dir(args) -> Path:
    if args.out_dir:
        return Path(args.out_dir)
    name = f"eval_{Path(args.manifest).stem}"
    if args.model:
        model = Path(args.model)
        return (model if model.is_dir() else model.parent) / name
    return Path(name)


def _run_evaluate(args) -> int:
    from asr.decode import DecodingOptions
    from asr.evaluate import evaluate_manifest
    from asr.transcribe import load_model

    recognizer = load_model(args.model, args.device)
    out_dir = _eval_dir(args)
    options = DecodingOptions(decoder=args.decoder)
    result = evaluate_manifest(recognizer, args.manifest, out_dir, options, args.batch_size)
    w, c = result.words, result.chars
    print(f"utterances: {result.utterances}  audio: {result.audio_seconds / 60:.1f} min")
    print(
        f"WER {100 * w.rate:.2f}%  (S={w.substitutions} D={w.deletions} I={w.insertions} "
        f"N={w.reference_length})"
    )
    print(
        f"CER {100 * c.rate:.2f}%  (S={c.substitutions} D={c.deletions} I={c.insertions} "
        f"N={c.reference_length})"
    )
    print(f"report: {out_dir / 'report.txt'}  summary: {out_dir / 'summary.json'}")
    return 0


# --- train -------------------------------------------------------------------------------


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an acoustic model from a TOML config",
        description="Train a CTC acoustic model. The experiment folder receives config.toml, "
        "train.log, last.pt, best.pt and model.pt (best weights, for transcribe/evaluate).",
        formatter_class=_Formatter,
    )
    p.add_argument("--config", required=True, help="TOML config (see recipes/*/config.toml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.hidden_size=512 (repeatable)",
    )
    p.add_argument("--exp-dir", default=None, help="experiment folder (default: exp/<recipe>)")
    p.add_argument(
        "--max-batch-seconds",
        type=float,
        default=None,
        help="batches of this much padded audio, bucketed by duration (same as --set "
        "data.max_batch_seconds=...; default: the config's value)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from <exp-dir>/last.pt where it stopped, mid-epoch included",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="CHECKPOINT",
        help="start from this checkpoint's weights (fine-tuning; same vocabulary)",
    )
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from asr.config import load_toml
    from asr.train import ExperimentConfig, NonFiniteLossError, fit

    overrides = list(args.overrides)
    if args.max_batch_seconds is not None:
        overrides.append(f"data.max_batch_seconds={args.max_batch_seconds}")
    if args.resume and args.init_from:
        print("asr: error: --resume and --init-from exclude each other", file=sys.stderr)
        return 2
    cfg = load_toml(ExperimentConfig, args.config, overrides)
    exp_dir = Path(args.exp_dir or Path("exp") / Path(args.config).resolve().parent.name)
    try:
        trainer = fit(cfg, exp_dir, resume=args.resume, init_from=args.init_from)
    except NonFiniteLossError as err:
        print(f"asr: error: {err}", file=sys.stderr)
        return 1
    if trainer.dist.is_main:
        print(f"model: {exp_dir / 'model.pt'}  (best validation WER {trainer.best_wer:.4f})")
    return 0


# --- average -----------------------------------------------------------------------------


def _add_average(sub) -> None:
    p = sub.add_parser(
        "average",
        help="average the weights of several epoch checkpoints",
        description="Average the last N or the best N (by validation WER) epoch checkpoints "
        "of an experiment (<exp-dir>/epochs/epoch-NNN.pt) into one model.",
        formatter_class=_Formatter,
    )
    p.add_argument("exp_dir", help="experiment folder written by asr train")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=int, metavar="N", help="average the last N epochs")
    which.add_argument("--best", type=int, metavar="N", help="average the N of lowest WER")
    p.add_argument("--out", default=None, help="output file (default: <exp-dir>/averaged.pt)")
    p.set_defaults(func=_run_average)


def _run_average(args) -> int:
    from asr.average import average_experiment, select_checkpoints

    by, num = ("last", args.last) if args.last is not None else ("best", args.best)
    paths = select_checkpoints(args.exp_dir, num, by)
    out = average_experiment(args.exp_dir, num, by, args.out)
    print(f"averaged {', '.join(p.name for p in paths)} -> {out}")
    return 0


# --- data --------------------------------------------------------------------------------


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="make and check corpora and manifests")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    tones = data_sub.add_parser(
        "tones",
        help="a tone corpus (one chord per character) for smoke tests and the quickstart",
        description="Write WAV files and manifest.jsonl of text rendered as tone chords. Not "
        "speech: it exercises the pipeline on any machine in seconds.",
        formatter_class=_Formatter,
    )
    tones.add_argument("--out", required=True, help="output folder")
    tones.add_argument("--num", type=int, default=200, help="utterances to make")
    tones.add_argument("--seed", type=int, default=0, help="random seed")
    tones.set_defaults(func=_run_tones)


def _run_tones(args) -> int:
    from asr.tones import make_tone_corpus

    manifest = make_tone_corpus(args.out, args.num, args.seed)
    print(f"wrote {args.num} utterances: {manifest}")
    return 0


# --- entry point -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr",
        description="CTC speech recognition: transcribe, evaluate, train.",
        formatter_class=_Formatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_transcribe(sub)
    _add_evaluate(sub)
    _add_train(sub)
    _add_average(sub)
    _add_data(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.func(args)
    except (AudioError, CheckpointError, ConfigError, ManifestError) as err:
        print(f"asr: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
