"""The `asr` command line: the only module that reads argv or prints.

asr transcribe AUDIO... [--model PATH] [--decoder beam --lm DIR/lm.bin] [--output-format srt]
asr evaluate MANIFEST [--model PATH] [--decoder beam --lm DIR/lm.bin]
asr train --config FILE [--set section.key=value ...] [--exp-dir DIR] [--resume]
asr average EXP_DIR --last N | --best N
asr data tones --out DIR
asr data prepare librispeech|commonvoice|ljspeech|kaldi --root DIR --out DIR
asr data synth --text FILE... --out DIR
asr data check MANIFEST [--write-clean OUT]
asr lm prepare-text BOOKS... --out FILE [--exclude-ids 3659,14851,135]
asr lm build --text FILE --order 4 --out DIR
asr decode tune MODEL DEV_MANIFEST --lm DIR/lm.bin
asr serve [--model PATH] [--host 127.0.0.1] [--port 8000] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from asr.audio import AudioError
from asr.config import ConfigError
from asr.inference.lm import LMError

__all__ = ["main"]

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au"}

log = logging.getLogger("asr")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _model_help() -> str:
    from asr.transcribe import DEFAULT_MODEL

    return f"checkpoint file or experiment folder (default: the bundled model, {DEFAULT_MODEL})"


def _add_decoding_args(parser: argparse.ArgumentParser) -> None:
    from asr.transcribe import RUNTIMES

    parser.add_argument("--model", default=None, help=_model_help())
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument(
        "--runtime",
        default="auto",
        choices=RUNTIMES,
        help="torch, or onnx (the model folder's ONNX graph through onnxruntime, no torch); "
        "auto: onnx when the folder has a graph and onnxruntime is installed",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="files decoded together")
    _add_search_args(parser)


def _add_search_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "decoding",
        "defaults come from the model folder (decoding.json from `asr decode "
        "tune`, or an LM in <model>/lm), else greedy",
    )
    g.add_argument("--decoder", default=None, choices=["greedy", "beam"], help="CTC decoder")
    g.add_argument("--lm", default=None, help="KenLM n-gram LM (ARPA or binary) for beam search")
    g.add_argument(
        "--lexicon",
        default=None,
        help="lexicon ('word w o r d |' lines); default: lexicon.txt beside a word LM; "
        "none: lexicon-free search",
    )
    g.add_argument("--beam-size", type=int, default=None, help="beam width (default 50)")
    g.add_argument("--beam-threshold", type=float, default=None, help="beam pruning (default 25)")
    g.add_argument("--lm-weight", type=float, default=None, help="LM weight (default 2.0)")
    g.add_argument("--word-score", type=float, default=None, help="per-word score (default 0)")
    g.add_argument("--unk-score", type=float, default=None, help="out-of-lexicon word score")
    g.add_argument("--nbest", type=int, default=None, help="hypotheses kept (json output)")
    g.add_argument(
        "--log-add",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sum (not max) the scores of merged hypotheses (default: sum)",
    )
    g.add_argument(
        "--decode-workers", type=int, default=1, help="processes for beam search across files"
    )


def decoding_options(args):
    """DecodingOptions from the model folder's defaults and the command-line flags."""
    from asr.decode import DecodingOptions
    from asr.inference.lm import read_lm_info
    from asr.inference.model_folder import default_decoding, lexicon_for
    from asr.transcribe import resolve_model_path

    fields = default_decoding(resolve_model_path(args.model))
    flags = {
        "decoder": args.decoder,
        "lm_path": args.lm,
        "lexicon_path": args.lexicon,
        "beam_size": args.beam_size,
        "beam_threshold": args.beam_threshold,
        "lm_weight": args.lm_weight,
        "word_score": args.word_score,
        "unk_score": args.unk_score,
        "nbest": args.nbest,
        "log_add": args.log_add,
    }
    if args.lm is not None:  # a new LM brings its own lexicon, not the model folder's
        fields.pop("lexicon_path", None)
    fields.update({k: v for k, v in flags.items() if v is not None})
    fields["num_workers"] = args.decode_workers
    if fields.get("lm_path") and "lexicon_path" not in fields:
        fields["lexicon_path"] = lexicon_for(fields["lm_path"])
    if fields.get("lm_path") and fields.get("decoder") is None:
        fields["decoder"] = "beam"
    info = read_lm_info(fields["lm_path"]) if fields.get("lm_path") else None
    if info is not None and info.unit == "word" and not fields.get("lexicon_path"):
        raise LMError(f"{fields['lm_path']} is a word LM: pass --lexicon (asr lm build writes one)")
    try:
        return DecodingOptions(**fields)
    except ValueError as err:
        raise ConfigError(f"decoding options: {err}") from err


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
        choices=["txt", "json", "srt", "vtt"],
        help="txt: the transcript ('path<TAB>transcript' lines for several files on stdout); "
        "json: text, duration, words with start, end, confidence, and the decoding options; "
        "srt/vtt: subtitles",
    )
    p.add_argument(
        "--output-dir",
        default=None,
        help="write <audio name>.<format> per input here instead of printing",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="longer recordings are split at pauses into chunks of at most this length",
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
    from asr.inference.segment import SegmentConfig
    from asr.transcribe import load_model

    paths = expand_audio_paths(args.audio)
    options = decoding_options(args)
    recognizer = load_model(args.model, args.device, args.runtime)
    results = recognizer.transcribe(
        paths,
        options,
        args.batch_size,
        word_timestamps=args.output_format != "txt",
        segment=SegmentConfig(max_seconds=args.max_seconds),
    )
    rendered = [format_transcript(r, args.output_format, options) for r in results]
    if args.output_dir:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path, text in zip(paths, rendered, strict=True):
            (out_dir / f"{path.stem}.{args.output_format}").write_text(text, encoding="utf-8")
        print(f"wrote {len(paths)} {args.output_format} files to {out_dir}")
    elif args.output_format == "json":
        records = [json.loads(text) for text in rendered]
        print(json.dumps(records if len(records) > 1 else records[0], indent=2, ensure_ascii=False))
    elif args.output_format == "txt" and len(results) > 1:
        for r in results:
            print(f"{r.source}\t{r.text}")
    else:
        print("\n".join(text.rstrip("\n") for text in rendered))
    return 0


def format_transcript(result, output_format: str, options) -> str:
    """One transcript as the file contents of `output_format`."""
    from asr.inference import formats

    if output_format == "txt":
        return formats.to_txt(result.text)
    if output_format == "srt":
        return formats.to_srt(result.words, result.text, result.duration)
    if output_format == "vtt":
        return formats.to_vtt(result.words, result.text, result.duration)
    record = {
        "audio": result.source,
        "text": result.text,
        "duration": round(result.duration, 3),
        "words": [w.to_dict() for w in result.words],
        "nbest": [{"text": h.text, "score": h.score} for h in result.hypothesis.alternatives],
        "options": options.to_dict(),
    }
    return formats.to_json(record)


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
    from asr.transcribe import load_model

    try:
        from asr.evaluate import evaluate_manifest
    except ModuleNotFoundError as err:  # its manifest reader (asr.data) imports torch
        raise ConfigError(f"asr evaluate needs {err.name}: pip install 'asr[train]'") from err

    options = decoding_options(args)
    recognizer = load_model(args.model, args.device, args.runtime)
    out_dir = _eval_dir(args)
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
    from asr.training.loop import ExperimentConfig, NonFiniteLossError, fit

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
    from asr.training.average import average_experiment, select_checkpoints

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
    _add_split(data_sub)
    _add_data_prepare(data_sub)
    _add_data_synth(data_sub)
    _add_data_check(data_sub)


def _add_split(data_sub) -> None:
    p = data_sub.add_parser(
        "split",
        help="hold out a random or speaker-disjoint subset of a manifest",
        description="Write OUT_DIR/train.jsonl and OUT_DIR/held_out.jsonl: COUNT utterances "
        "drawn with SEED, or every utterance of the given speakers, are held out (for "
        "checkpoint and configuration selection), the rest kept.",
        formatter_class=_Formatter,
    )
    p.add_argument("manifest", help="JSON-lines manifest to split")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--held-out", type=int, help="utterances to hold out, drawn at random")
    how.add_argument(
        "--speakers",
        nargs="+",
        help="hold out every utterance of these speakers (a speaker-disjoint validation set)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (with --held-out)")
    p.add_argument("--out-dir", required=True, help="folder for train.jsonl and held_out.jsonl")
    p.set_defaults(func=_run_split)


def _run_split(args) -> int:
    from asr.manifest import read_manifest, split_by_speakers, split_held_out, write_manifest

    utterances = read_manifest(args.manifest)
    if args.speakers:
        kept, held = split_by_speakers(utterances, args.speakers)
    else:
        kept, held = split_held_out(utterances, args.held_out, args.seed)
    out = Path(args.out_dir)
    write_manifest(out / "train.jsonl", kept)
    write_manifest(out / "held_out.jsonl", held)
    print(f"{out / 'train.jsonl'}: {len(kept)} utterances; {out / 'held_out.jsonl'}: {len(held)}")
    return 0


def _run_tones(args) -> int:
    from asr.corpora.tones import make_tone_corpus

    manifest = make_tone_corpus(args.out, args.num, args.seed)
    print(f"wrote {args.num} utterances: {manifest}")
    return 0


def _add_prepare_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="corpus folder")
    p.add_argument("--out", required=True, help="folder for the <name>.jsonl manifests")
    p.add_argument("--min-duration", type=float, default=0.0, help="drop shorter (seconds)")
    p.add_argument("--max-duration", type=float, default=float("inf"), help="drop longer (seconds)")


def _add_data_prepare(data_sub) -> None:
    p = data_sub.add_parser(
        "prepare",
        help="write manifests for a corpus in a known layout",
        description="Write JSON-lines manifests (durations from the audio headers) for a "
        "corpus. Dropped utterances are listed in <name>.dropped.tsv beside the manifest.",
        formatter_class=_Formatter,
    )
    corpus_sub = p.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    libri = corpus_sub.add_parser(
        "librispeech",
        help="LibriSpeech or Mini LibriSpeech: <subset>/<speaker>/<chapter>/*.trans.txt",
        formatter_class=_Formatter,
    )
    _add_prepare_common(libri)
    libri.add_argument(
        "--subsets",
        nargs="+",
        default=None,
        help="subset folders (default: every subset folder found under --root; with "
        "--download: train-clean-5 dev-clean-2)",
    )
    libri.add_argument(
        "--download",
        action="store_true",
        help="fetch the subsets from OpenSLR into --root first (resumed, checksum-verified)",
    )
    libri.add_argument("--mirror", default=None, help="base URL replacing https://www.openslr.org")
    cv = corpus_sub.add_parser(
        "commonvoice", help="Common Voice: <split>.tsv and clips/", formatter_class=_Formatter
    )
    _add_prepare_common(cv)
    cv.add_argument(
        "--splits", nargs="+", default=["train", "dev", "test"], help="the <split>.tsv files"
    )
    lj = corpus_sub.add_parser(
        "ljspeech", help="LJ Speech: metadata.csv and wavs/", formatter_class=_Formatter
    )
    _add_prepare_common(lj)
    kaldi = corpus_sub.add_parser(
        "kaldi",
        help="a Kaldi data dir: wav.scp, text, optional utt2spk and segments",
        formatter_class=_Formatter,
    )
    _add_prepare_common(kaldi)
    for q in (cv, lj, kaldi):
        q.add_argument("--name", default=None, help="manifest name (default: the corpus name)")
    p.set_defaults(func=_run_prepare)


def _prepare_splits(args) -> dict[str, list]:
    from asr.corpora import importers as corpora

    if args.corpus == "librispeech":
        if args.download:
            from asr.corpora.download import download_librispeech

            subsets = args.subsets or ["train-clean-5", "dev-clean-2"]
            for subset in subsets:
                download_librispeech(subset, args.root, args.mirror)
        subsets = args.subsets or corpora.librispeech_subsets(args.root)
        if not subsets:
            raise corpora.CorpusError(f"{args.root}: no LibriSpeech subset folders found")
        return {s: corpora.import_librispeech(args.root, s) for s in subsets}
    if args.corpus == "commonvoice":
        return {
            f"{args.name}_{s}" if args.name else s: corpora.import_commonvoice(args.root, s)
            for s in args.splits
        }
    if args.corpus == "ljspeech":
        return {args.name or "ljspeech": corpora.import_ljspeech(args.root)}
    name = args.name or Path(args.root).name
    segments_dir = Path(args.out) / f"{name}_segments"
    return {name: corpora.import_kaldi(args.root, segments_dir)}


def _run_prepare(args) -> int:
    from asr.corpora.importers import DurationFilter, filter_by_duration
    from asr.manifest import write_dropped, write_manifest

    limits = DurationFilter(args.min_duration, args.max_duration)
    out = Path(args.out)
    for name, utterances in _prepare_splits(args).items():
        kept, dropped = filter_by_duration(utterances, limits)
        write_manifest(out / f"{name}.jsonl", kept)
        hours = sum(u.duration for u in kept) / 3600
        speakers = len({u.speaker for u in kept})
        print(
            f"{out / f'{name}.jsonl'}: {len(kept)} utterances, {hours:.3f} h, {speakers} speakers"
        )
        if dropped:
            write_dropped(out / f"{name}.dropped.tsv", dropped)
            print(f"  dropped {len(dropped)} by duration: {out / f'{name}.dropped.tsv'}")
    return 0


def _add_data_check(data_sub) -> None:
    p = data_sub.add_parser(
        "check",
        help="find every bad entry of a manifest",
        description="Decode every entry and report, with its line and file: missing, "
        "unreadable, empty, truncated, corrupt or silent audio; sample rate, channels or "
        "duration differing from the manifest; characters outside the vocabulary; "
        "transcripts too long for the audio; duplicate ids. Exits 1 when any is found.",
        formatter_class=_Formatter,
    )
    p.add_argument("manifest", help="JSON-lines manifest")
    p.add_argument(
        "--config",
        default=None,
        help="experiment TOML whose features.hop_length and model.subsampling set the frame "
        "rate (default: the built-in defaults)",
    )
    p.add_argument("--jobs", type=int, default=1, help="worker processes decoding audio")
    p.add_argument(
        "--sample-rate",
        type=int,
        default=0,
        help="require this sample rate of every file (0: only where a line gives sample_rate)",
    )
    p.add_argument(
        "--channels",
        type=int,
        default=0,
        help="require this channel count of every file (0: only where a line gives channels)",
    )
    p.add_argument(
        "--duration-tolerance", type=float, default=0.1, help="seconds manifest and file may differ"
    )
    p.add_argument(
        "--silence-dbfs", type=float, default=-60.0, help="a clip peaking below this is silent"
    )
    p.add_argument(
        "--write-clean",
        default=None,
        metavar="OUT",
        help="write the good entries to OUT and the dropped ones, with reasons, to "
        "<OUT stem>.dropped.tsv",
    )
    p.set_defaults(func=_run_check)


def _check_config(args):
    from asr.config import load_toml
    from asr.corpora.check import CheckConfig
    from asr.training.loop import ExperimentConfig

    cfg = load_toml(ExperimentConfig, args.config, []) if args.config else ExperimentConfig()
    return CheckConfig(
        hop_length=cfg.features.hop_length,
        feature_rate=cfg.features.sample_rate,
        subsampling=cfg.model.subsampling,
        sample_rate=args.sample_rate,
        channels=args.channels,
        duration_tolerance=args.duration_tolerance,
        silence_dbfs=args.silence_dbfs,
        jobs=args.jobs,
    )


def _run_check(args) -> int:
    from collections import Counter

    from asr.corpora.check import check_manifest, write_clean

    report = check_manifest(args.manifest, _check_config(args))
    for problem in report.problems:
        print(f"{args.manifest}:{problem}")
    kinds = Counter(p.kind for p in report.problems)
    summary = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()) or "no problems"
    print(f"{len(report.entries)} entries, {len(report.bad_lines)} with problems: {summary}")
    if args.write_clean:
        clean, dropped = write_clean(report, args.write_clean)
        kept = len(report.entries) - len(report.bad_lines)
        print(f"clean manifest: {clean} ({kept} entries); dropped lines: {dropped}")
    return 1 if report.problems else 0


def _add_data_synth(data_sub) -> None:
    from asr.corpora.synth import VOICES

    p = data_sub.add_parser(
        "synth",
        help="a speech corpus from text, spoken by espeak-ng, flite and festival",
        description="Split text files into sentences, normalize them and speak each with a "
        "voice, speaking rate and pitch drawn from the seed; writes <out>/wavs/*.wav (16 kHz "
        "mono), <out>/manifest.jsonl, and <out>/skipped.tsv for sentences left out. "
        "Re-running resumes: finished utterances are kept.",
        formatter_class=_Formatter,
    )
    p.add_argument("--text", nargs="+", required=True, help="text files of sentences")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, default=0, help="sentences to speak (0: all)")
    p.add_argument("--voices", nargs="+", default=list(VOICES), help="engine:voice names")
    p.add_argument("--seed", type=int, default=0, help="seeds sentence choice, voice, rate, pitch")
    p.add_argument("--jobs", type=int, default=0, help="parallel workers (0: one per core)")
    p.add_argument("--min-words", type=int, default=3, help="shorter sentences are left out")
    p.add_argument("--max-words", type=int, default=25, help="longer sentences are left out")
    p.set_defaults(func=_run_synth)


def _run_synth(args) -> int:
    import random
    import time

    from asr.corpora.synth import SynthConfig, read_sentences, synthesize_corpus, write_corpus

    sentences, rejected = read_sentences(args.text, args.min_words, args.max_words)
    print(f"{len(sentences)} usable sentences; {len(rejected)} left out by length or spelling")
    if args.num and args.num < len(sentences):
        chosen = sorted(random.Random(args.seed).sample(range(len(sentences)), args.num))
        sentences = [sentences[i] for i in chosen]
    cfg = SynthConfig(voices=tuple(args.voices), seed=args.seed, jobs=args.jobs)
    start = time.monotonic()
    result = synthesize_corpus(sentences, args.out, cfg)
    elapsed = time.monotonic() - start
    manifest, skipped = write_corpus(result, args.out)
    seconds = sum(u.duration for u in result.utterances)
    print(
        f"{manifest}: {len(result.utterances)} utterances, {seconds / 3600:.3f} h "
        f"({result.synthesized} synthesized now, in {elapsed:.1f} s)"
    )
    for utt, reason in result.skipped:
        print(f"skipped {utt.id}: {reason}: {utt.text!r}")
    if skipped:
        print(f"skipped {len(result.skipped)}: {skipped}")
    return 0


# --- lm ----------------------------------------------------------------------------------


def _add_lm(sub) -> None:
    p = sub.add_parser("lm", help="prepare text for and build n-gram language models")
    lm_sub = p.add_subparsers(dest="lm_command", required=True, metavar="COMMAND")
    prep = lm_sub.add_parser(
        "prepare-text",
        help="raw books -> one normalized sentence per line",
        description="Split raw book text into sentences and normalize them as training text "
        "is normalized (numbers spelled out, punctuation removed, apostrophes kept, lower "
        "case). Books named pg<ID>.txt can be excluded by Gutenberg id, so that an LM never "
        "holds an evaluation set's text (Mini LibriSpeech dev reads 3659, 14851 and 135).",
        formatter_class=_Formatter,
    )
    prep.add_argument("books", nargs="+", help="book .txt files or folders of them")
    prep.add_argument("--out", required=True, help="output text file")
    prep.add_argument(
        "--exclude-ids",
        action="append",
        default=[],
        metavar="ID,ID,...",
        help="Gutenberg ids of books to leave out (repeatable, comma-separated)",
    )
    prep.set_defaults(func=_run_lm_prepare)
    build = lm_sub.add_parser(
        "build",
        help="KenLM ARPA + binary LM and the lexicon from a text file",
        description="Build lm.arpa and lm.bin with KenLM's lmplz and build_binary, plus "
        "lexicon.txt (word -> spelling) and lm.json. The KenLM tools come from "
        "scripts/install_kenlm.sh.",
        formatter_class=_Formatter,
    )
    build.add_argument("--text", required=True, help="one normalized sentence per line")
    build.add_argument("--order", type=int, default=4, help="n-gram order")
    build.add_argument(
        "--prune",
        type=int,
        nargs="+",
        default=[],
        help="lmplz count thresholds per order, e.g. 0 0 1 (drop singleton 3-grams and up)",
    )
    build.add_argument(
        "--unit",
        default="word",
        choices=["word", "char"],
        help="word LM (for lexicon search) or character LM (for lexicon-free search)",
    )
    build.add_argument("--vocab-size", type=int, default=None, help="keep the N commonest words")
    build.add_argument("--memory", default="25%", help="lmplz memory budget (-S)")
    build.add_argument(
        "--quantize",
        type=int,
        default=0,
        metavar="BITS",
        help="store lm.bin as a trie with BITS-bit probabilities and backoffs (0: probing)",
    )
    build.add_argument("--out", required=True, help="output folder (e.g. <model folder>/lm)")
    build.set_defaults(func=_run_lm_build)


def _run_lm_prepare(args) -> int:
    from asr.inference.lm import prepare_text

    try:
        ids = {int(x) for item in args.exclude_ids for x in item.split(",") if x.strip()}
    except ValueError as err:
        raise ConfigError(f"--exclude-ids takes comma-separated integers ({err})") from err
    stats = prepare_text(args.books, args.out, ids)
    print(
        f"{args.out}: {stats.sentences} sentences, {stats.words} words from {stats.books} "
        f"books ({stats.excluded_books} excluded by id); dropped {stats.dropped_sentences} "
        f"sentences with characters outside the vocabulary {stats.dropped_chars!r}"
    )
    return 0


def _run_lm_build(args) -> int:
    from asr.inference.lm import build_lm

    info = build_lm(
        args.text,
        args.out,
        args.order,
        args.prune,
        args.unit,
        args.vocab_size,
        args.memory,
        args.quantize,
    )
    print(f"{args.out}: {info.order}-gram {info.unit} LM, vocabulary {info.vocab_size}")
    return 0


# --- decode ------------------------------------------------------------------------------


def _add_decode(sub) -> None:
    p = sub.add_parser("decode", help="decoder tools: tune LM weight and word score")
    dec_sub = p.add_subparsers(dest="decode_command", required=True, metavar="COMMAND")
    tune = dec_sub.add_parser(
        "tune",
        help="grid-search LM weight and word score on a dev set",
        description="Run the acoustic model once over DEV_MANIFEST, then beam-search the "
        "cached log-probs for every (lm weight, word score) pair. Prints the WER table and "
        "writes the best setting to <model folder>/decoding.json, which transcribe and "
        "evaluate then use by default.",
        formatter_class=_Formatter,
    )
    tune.add_argument("model", help="checkpoint file or experiment folder")
    tune.add_argument("dev_manifest", help="JSON-lines manifest of the dev set")
    tune.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    tune.add_argument("--batch-size", type=int, default=8, help="utterances per model batch")
    tune.add_argument("--lm-weights", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    tune.add_argument("--word-scores", type=float, nargs="+", default=[-1.0, 0.0, 1.0, 2.0])
    tune.add_argument("--no-save", action="store_true", help="print only, write nothing")
    _add_search_args(tune)
    tune.set_defaults(func=_run_tune)


def _run_tune(args) -> int:
    from dataclasses import replace

    from asr.inference.tune import cache_log_probs, grid_search, write_decoding
    from asr.transcribe import load_model

    options = replace(decoding_options(args), decoder="beam")
    if not options.lm_path:
        raise ConfigError("asr decode tune needs --lm (or an LM in the model folder)")
    recognizer = load_model(args.model, args.device)
    cache = cache_log_probs(recognizer, args.dev_manifest, args.batch_size)
    rows = grid_search(cache, recognizer.vocab, options, args.lm_weights, args.word_scores)
    print(f"{'lm_weight':>9} {'word_score':>10} {'WER %':>7} {'seconds':>8}")
    for r in rows:
        print(f"{r.lm_weight:9.2f} {r.word_score:10.2f} {100 * r.wer:7.2f} {r.seconds:8.2f}")
    best = min(rows, key=lambda r: r.wer)
    print(
        f"best: lm_weight {best.lm_weight} word_score {best.word_score} WER {100 * best.wer:.2f}%"
    )
    if not args.no_save:
        chosen = replace(options, lm_weight=best.lm_weight, word_score=best.word_score)
        extra = {"dev_manifest": str(args.dev_manifest), "dev_wer": best.wer}
        model = Path(args.model)
        folder = model if model.is_dir() else model.parent
        print(f"wrote {write_decoding(folder, chosen, extra)}")
    return 0


# --- export ------------------------------------------------------------------------------


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a model folder for shipping (inference weights, LM, lexicon)",
        description="Copy a checkpoint's inference payload (config, vocabulary, feature "
        "statistics, weights; no optimizer state) to OUT/model.pt, optionally in half "
        "precision, with an LM folder from `asr lm build` as OUT/lm.",
        formatter_class=_Formatter,
    )
    p.add_argument("model", help="checkpoint file or experiment folder")
    p.add_argument("--out", required=True, help="output model folder")
    p.add_argument("--half", action="store_true", help="store weights as float16")
    p.add_argument("--lm", default=None, help="LM folder with lm.bin and lexicon.txt")
    p.add_argument("--onnx", action="store_true", help="also OUT/model.onnx, for the light runtime")
    p.add_argument(
        "--int8",
        action="store_true",
        help="also OUT/model.int8.onnx (int8 weights; implies --onnx)",
    )
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from asr.inference.export import export_model

    model_file = export_model(args.model, args.out, args.half, args.lm, args.onnx, args.int8)
    for path in sorted(model_file.parent.glob("model.*")):
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


# --- serve -------------------------------------------------------------------------------


def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="HTTP transcription server (OpenAI-style API) with a page to try it",
        description="Load the model once and serve POST /v1/audio/transcriptions (multipart "
        "'file'; response_format json, text, srt, vtt or verbose_json), GET /health, and a page "
        "at / to upload or record audio. Needs the 'serve' extra (pip install -e '.[serve]').",
        formatter_class=_Formatter,
    )
    _add_decoding_args(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; another than loopback exposes a server with no authentication",
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--workers", type=int, default=1, help="recognitions running at once (threads)")
    p.add_argument(
        "--max-queue", type=int, default=8, help="requests waiting for a worker; more get 503"
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=100.0, help="larger request bodies get 413"
    )
    p.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per request, waiting included (504)"
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="longer recordings are split at pauses into chunks of at most this length",
    )
    p.set_defaults(func=_run_serve)


def serve_config(args):
    """ServeConfig from the `asr serve` flags."""
    try:
        from asr.serve import ServeConfig
    except ModuleNotFoundError as err:  # the optional 'serve' extra
        raise ConfigError(f"asr serve needs {err.name}: pip install -e '.[serve]'") from err
    try:
        return ServeConfig(
            host=args.host,
            port=args.port,
            workers=args.workers,
            max_queue=args.max_queue,
            max_upload_mb=args.max_upload_mb,
            timeout=args.timeout,
            max_seconds=args.max_seconds,
            batch_size=args.batch_size,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err


def _run_serve(args) -> int:
    from asr.serve import run_server
    from asr.transcribe import load_model

    config = serve_config(args)
    options = decoding_options(args)
    recognizer = load_model(args.model, args.device, args.runtime)
    run_server(recognizer, config, options)
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
    _add_lm(sub)
    _add_decode(sub)
    _add_export(sub)
    _add_serve(sub)
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
    except _user_errors() as err:
        print(f"asr: error: {err}", file=sys.stderr)
        return 2


# Errors reported as one line, not a traceback: (module, class). FileNotFoundError too, e.g.
# an LM or lexicon path that does not exist.
_USER_ERRORS = (
    ("asr.audio", "AudioError"),
    ("asr.checkpoint", "CheckpointError"),
    ("asr.config", "ConfigError"),
    ("asr.corpora.importers", "CorpusError"),
    ("asr.corpora.download", "DownloadError"),
    ("asr.manifest", "ManifestError"),
    ("asr.corpora.synth", "SynthError"),
    ("asr.inference.lm", "LMError"),
)


def _user_errors() -> tuple[type[Exception], ...]:
    """The error classes of _USER_ERRORS whose modules are loaded. Only a loaded module can
    have raised one, and importing the others here would load torch
    into a command that does not need it, or fail in an install without it."""
    loaded = [getattr(sys.modules[m], name) for m, name in _USER_ERRORS if m in sys.modules]
    return (*loaded, FileNotFoundError)


if __name__ == "__main__":
    sys.exit(main())
