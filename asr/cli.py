"""The `asr` command line: the only module that reads argv or prints.

asr transcribe AUDIO... [--model PATH]
asr evaluate MANIFEST [--model PATH]
asr train --config FILE [--set section.key=value ...] [--exp-dir DIR]
asr data tones --out DIR
asr data prepare librispeech|commonvoice|ljspeech|kaldi --root DIR --out DIR
asr data synth --text FILE... --out DIR
asr data check MANIFEST [--write-clean OUT]
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
from asr.corpora import CorpusError
from asr.data import ManifestError
from asr.download import DownloadError
from asr.synth import SynthError

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
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from asr.config import load_toml
    from asr.train import ExperimentConfig, fit

    cfg = load_toml(ExperimentConfig, args.config, args.overrides)
    exp_dir = Path(args.exp_dir or Path("exp") / Path(args.config).resolve().parent.name)
    trainer = fit(cfg, exp_dir)
    print(f"model: {exp_dir / 'model.pt'}  (best validation WER {trainer.best_wer:.4f})")
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
    _add_data_prepare(data_sub)
    _add_data_synth(data_sub)
    _add_data_check(data_sub)


def _run_tones(args) -> int:
    from asr.tones import make_tone_corpus

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
    from asr import corpora

    if args.corpus == "librispeech":
        if args.download:
            from asr.download import download_librispeech

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
    from asr.corpora import DurationFilter, filter_by_duration
    from asr.data import write_dropped, write_manifest

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
    from asr.check import CheckConfig
    from asr.config import load_toml
    from asr.train import ExperimentConfig

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

    from asr.check import check_manifest, write_clean

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
    from asr.synth import VOICES

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

    from asr.synth import SynthConfig, read_sentences, synthesize_corpus, write_corpus

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
    except (
        AudioError,
        CheckpointError,
        ConfigError,
        CorpusError,
        DownloadError,
        ManifestError,
        SynthError,
    ) as err:
        print(f"asr: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
