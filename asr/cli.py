"""The `asr` command line: the only module that reads argv or prints.

Each command turns its arguments into one library call and prints what comes back; every
choice (decoding settings and the rules between them, defaults, file layouts) is the library's.

asr transcribe AUDIO... [--model PATH] [--decoder beam --lm DIR/lm.bin] [--output-format srt]
asr evaluate MANIFEST [--model PATH];  asr decode tune MODEL DEV_MANIFEST --lm DIR/lm.bin
asr train --config FILE [--set section.key=value ...] [--exp-dir DIR] [--resume]
asr average EXP_DIR --last N | --best N;  asr export MODEL --out DIR [--half] [--onnx]
asr data tones|split|prepare|check|synth ...;  asr lm prepare-text|build ...
asr serve [--model PATH] [--host 127.0.0.1] [--port 8000] [--workers N]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# Light modules only (no torch): `asr transcribe` on the ONNX runtime must not load it.
from asr.audio import expand_audio_paths
from asr.config import ConfigError
from asr.corpora import check, importers, synth
from asr.corpora.tones import make_tone_corpus
from asr.decode import DECODERS, DecodingOptions
from asr.errors import exit_code, user_message
from asr.evaluate import evaluate_manifest, report_dir
from asr.flags import Formatter, add_fields, command, given, positive_int, verbs
from asr.hotwords import read_hotwords_file
from asr.inference import formats, lm
from asr.inference.batch import transcribe_files
from asr.inference.model_folder import DEFAULT_MODEL, ExportOptions
from asr.inference.recognizer import RUNTIMES
from asr.inference.segment import SegmentConfig
from asr.manifest import split_manifest
from asr.punctuation.restore import default_punctuator, read_lines, restore_lines
from asr.serve.config import ServeConfig
from asr.tune import TuneGrid, tune
from asr.usererror import UserError

__all__ = ["build_parser", "main", "serve_config"]


def _add_model(p: argparse.ArgumentParser, named: bool = True) -> None:
    """The model, where it runs, and the decoding flags (`named`: --model, --runtime)."""
    if named:  # `decode tune` takes its model as a positional argument
        p.add_argument("--model", help=f"model folder or checkpoint (the bundled {DEFAULT_MODEL})")
        runtimes = "torch, or onnx (the folder's ONNX graph, no torch); auto: onnx if it has one"
        p.add_argument("--runtime", default="auto", choices=RUNTIMES, help=runtimes)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    p.add_argument(
        "--batch-size", type=positive_int, default=8, help="files (or chunks) decoded together"
    )
    group = p.add_argument_group(
        "decoding", "unset: the model folder's decoding.json or <model>/lm, else the built-in"
    )
    add_fields(group, DecodingOptions, unset=True, choices={"decoder": list(DECODERS)})
    hotwords = "a word or phrase a line, an optional boost after a tab or ':' (+ --hotwords)"
    group.add_argument("--hotwords-file", metavar="FILE", help=f"hotwords, {hotwords}")


def _decoding(args) -> dict:
    """The decoding flags given, as DecodingOptions fields for `load_model`."""
    options = given(args, DecodingOptions)
    if getattr(args, "hotwords_file", None):  # beside --hotwords; load_model merges them
        listed = read_hotwords_file(args.hotwords_file)
        options["hotwords"] = (*options.get("hotwords", ()), *listed)
    return options


def _add_inference(sub) -> None:
    p = command(sub, "transcribe", "transcribe audio files (any format soundfile reads)")
    p.add_argument("audio", nargs="+", help="audio files or folders (searched recursively)")
    _add_model(p)
    kinds = "; ".join(f"{name}: {f.help}" for name, f in formats.FORMATS.items())
    p.add_argument("--output-format", default="txt", choices=list(formats.FORMATS), help=kinds)
    p.add_argument("--output-dir", help="write <audio name>.<format> per input here, not stdout")
    add_fields(p, SegmentConfig)  # --max-seconds
    p.add_argument("--quiet", action="store_true", help="no progress bar (none unless a tty)")
    p.add_argument(
        "--stream",
        action="store_true",
        help="decode each file as a live stream read at real-time pace: partial text as it "
        "comes (on stderr), each utterance's final text at its pause (needs a streaming "
        "model, e.g. data/models/en-stream)",
    )
    p.add_argument("--fast", action="store_true", help="with --stream: do not wait for real time")
    p.set_defaults(func=_run_transcribe)
    p = command(sub, "evaluate", "WER and CER of a model on a manifest")
    p.description = "Writes report.txt (REF/HYP alignment per utterance) and summary.json."
    p.add_argument("manifest", help="JSON-lines manifest with audio_filepath, duration, text")
    _add_model(p)
    p.add_argument("--out-dir", help="for the reports (default: eval_<manifest> beside the model)")
    p.set_defaults(func=_run_evaluate)
    tools = verbs(sub, "decode", "decoder tools: tune LM weight and word score")
    p = command(tools, "tune", "grid-search LM weight and word score on a dev set")
    p.description = "The best setting goes to <model folder>/decoding.json, used from then on."
    p.add_argument("model", help="checkpoint file or experiment folder")
    p.add_argument("dev_manifest", help="JSON-lines manifest of the dev set")
    add_fields(p, TuneGrid)
    _add_model(p, named=False)
    p.set_defaults(func=_run_tune)


def _add_serve(sub) -> None:
    p = command(sub, "serve", "HTTP transcription server (OpenAI-style API) and a page")
    p.description = "POST /v1/audio/transcriptions, GET /health, GET /; needs the serve extra."
    _add_model(p)
    add_fields(p.add_argument_group("server"), ServeConfig)
    p.set_defaults(func=_run_serve)


def _run_transcribe(args) -> int:
    from asr.inference.recognizer import load_model

    paths = expand_audio_paths(args.audio)
    if args.output_dir:  # before any work: the folder, and no two outputs on one file
        formats.plan_outputs(paths, args.output_format, args.output_dir)
    recognizer = load_model(args.model, args.device, args.runtime, **_decoding(args))
    if args.stream:
        return _stream_files(recognizer, paths, not args.fast)
    options = recognizer.default_options
    how = {"output_format": args.output_format, "out_dir": args.output_dir}
    how |= {"batch_size": args.batch_size, "segment": SegmentConfig(**given(args, SegmentConfig))}
    report = transcribe_files(recognizer, paths, progress=False if args.quiet else None, **how)
    if args.output_dir:
        print(f"wrote {len(report.written)} {args.output_format} files to {args.output_dir}")
    elif report.transcripts:
        print(formats.join_transcripts(report.transcripts, args.output_format, options))
    for path, reason in report.failures:
        print(f"asr: error: {path}: {reason}", file=sys.stderr)
    if report.failures or len(paths) > 1:
        print(report.summary, file=sys.stderr)
    return 1 if report.failures else 0


def _stream_files(recognizer, paths: list, realtime: bool) -> int:
    """`asr transcribe --stream`: partials overwrite one line of stderr (on a terminal; one
    line each otherwise), final results go to stdout as "[start - end] text"."""
    from asr.inference.stream import stream_file

    live, failed = sys.stderr.isatty(), 0
    for path in paths:
        if len(paths) > 1:
            print(f"== {path}")
        try:
            for event in stream_file(recognizer.stream(), path, realtime):
                _print_event(event, live)
        except UserError as err:  # one bad file; the others still get their results
            print(f"asr: error: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _print_event(event, live: bool) -> None:
    if event.kind == "partial":
        end = "" if live else "\n"
        print(("\r\033[K" if live else "") + event.text, end=end, file=sys.stderr, flush=True)
        return
    if live:
        print("\r\033[K", end="", file=sys.stderr)
    if event.text:
        print(f"[{event.start:7.2f} - {event.end:7.2f}] {event.text}", flush=True)


def _run_evaluate(args) -> int:
    from asr.inference.recognizer import load_model

    recognizer = load_model(args.model, args.device, args.runtime, **_decoding(args))
    out_dir = Path(args.out_dir) if args.out_dir else report_dir(args.manifest, args.model)
    result = evaluate_manifest(recognizer, args.manifest, out_dir, batch_size=args.batch_size)
    print(result.summary)
    print(f"report: {out_dir / 'report.txt'}  summary: {out_dir / 'summary.json'}")
    for line, _audio, reason in result.failures:
        print(f"asr: error: {args.manifest}:{line}: {reason}", file=sys.stderr)
    if result.failures:
        print(f"{len(result.failures)} utterance(s) not transcribed, not scored", file=sys.stderr)
    return 1 if result.failures else 0


def _run_tune(args) -> int:
    grid = TuneGrid(**given(args, TuneGrid))
    report = tune(
        args.model, args.dev_manifest, grid, args.device, args.batch_size, **_decoding(args)
    )
    print(report.table)
    if report.written:
        print(f"wrote {report.written}")
    return 0


def serve_config(args) -> ServeConfig:
    """ServeConfig from the `asr serve` flags."""
    return ServeConfig(**given(args, ServeConfig))  # --batch-size too


def _run_serve(args) -> int:
    try:
        from asr.serve import run_server
    except ModuleNotFoundError as err:  # the optional 'serve' extra
        raise ConfigError(f"asr serve needs {err.name}: pip install -e '.[serve]'") from err
    from asr.inference.model_folder import live_model_path
    from asr.inference.recognizer import load_model

    config, decoding = serve_config(args), _decoding(args)
    recognizer = load_model(args.model, args.device, args.runtime, **decoding)
    live = live_model_path(args.model, config.stream_model)
    shared = {k: v for k, v in decoding.items() if k in ("hotwords", "raw")}  # not the search's
    streamer = live and load_model(live, args.device, args.runtime, **shared)
    run_server(recognizer, config, streamer)
    return 0


def _add_training(sub) -> None:
    p = command(sub, "train", "train an acoustic model from a TOML config")
    p.description = "The experiment folder receives config.toml, logs, checkpoints and model.pt."
    p.add_argument("--config", required=True, help="TOML config (see recipes/*/config.toml)")
    overrides = "override a config value, e.g. --set model.hidden_size=512 (repeatable)"
    p.add_argument("--set", dest="overrides", action="append", default=[], help=overrides)
    p.add_argument("--exp-dir", help="experiment folder (default: exp/<the config's folder>)")
    p.add_argument("--max-batch-seconds", type=float, help="= --set data.max_batch_seconds=...")
    p.add_argument("--resume", action="store_true", help="continue from <exp-dir>/last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace a trained model there")
    p.add_argument("--init-from", metavar="CHECKPOINT", help="start from these weights")
    p.set_defaults(func=_run_train)
    p = command(sub, "average", "average the weights of the last or best N epochs")
    p.description = "Averages epoch checkpoints (<exp-dir>/epochs/epoch-NNN.pt) into one model."
    p.add_argument("exp_dir", help="experiment folder written by asr train")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=positive_int, metavar="N", help="average the last N epochs")
    which.add_argument("--best", type=positive_int, metavar="N", help="the N of lowest WER")
    p.add_argument("--out", help="output file (default: <exp-dir>/averaged.pt)")
    p.set_defaults(func=_run_average)
    p = command(sub, "export", "write a model folder for shipping (weights, LM, lexicon)")
    p.description = "OUT/model.pt holds the inference payload alone (no optimizer state)."
    p.add_argument("model", help="checkpoint file or experiment folder")
    p.add_argument("--out", required=True, help="output model folder")
    add_fields(p, ExportOptions)
    p.set_defaults(func=_run_export)


def _run_train(args) -> int:
    from asr.layout import MODEL_FILE
    from asr.training.loop import train

    overrides = list(args.overrides)
    if args.max_batch_seconds is not None:
        overrides.append(f"data.max_batch_seconds={args.max_batch_seconds}")
    how = (args.resume, args.init_from, args.overwrite)
    trainer = train(args.config, args.exp_dir, overrides, *how)
    if trainer.dist.is_main:
        best = f"best validation WER {trainer.best_wer:.4f}"
        print(f"model: {trainer.exp_dir / MODEL_FILE}  ({best})")
    return 0


def _run_features(args) -> int:
    from asr.config import load_toml
    from asr.training.config import ExperimentConfig
    from asr.training.feature_cache import build_manifest_caches

    cfg = load_toml(ExperimentConfig, args.config, args.overrides)
    for line in build_manifest_caches(cfg, args.manifests):
        print(line, flush=True)
    return 0


def _run_average(args) -> int:
    from asr.training.average import average_experiment, select_checkpoints

    by, num = ("last", args.last) if args.last is not None else ("best", args.best)
    paths = select_checkpoints(args.exp_dir, num, by)
    out = average_experiment(args.exp_dir, num, by, args.out)
    print(f"averaged {', '.join(p.name for p in paths)} -> {out}")
    return 0


def _run_export(args) -> int:
    from asr.inference.export import export_model

    model_file = export_model(args.model, args.out, **given(args, ExportOptions))
    for path in sorted(model_file.parent.glob("model.*")):
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


def _add_data(sub) -> None:
    data = verbs(sub, "data", "make and check corpora and manifests")
    p = command(data, "tones", "a tone corpus (a chord per character): the pipeline in seconds")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, default=200, help="utterances to make")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=_run_tones)
    p = command(data, "split", "hold out a random or speaker-disjoint subset of a manifest")
    p.add_argument("manifest", help="JSON-lines manifest to split")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--held-out", type=int, default=0, help="utterances drawn at random")
    how.add_argument("--speakers", nargs="+", default=(), help="every utterance of these")
    p.add_argument("--seed", type=int, default=0, help="random seed (with --held-out)")
    p.add_argument("--out-dir", required=True, help="for train.jsonl and held_out.jsonl")
    p.set_defaults(func=_run_split)
    p = command(data, "check", "find every bad entry of a manifest (exit 1 if any)")
    p.description = "Decodes each entry's audio; asr/corpora/check.py lists what is checked."
    p.add_argument("manifest", help="JSON-lines manifest")
    p.add_argument("--config", help="experiment TOML setting the frame rate (features, model)")
    add_fields(p, check.CheckConfig)
    p.add_argument("--write-clean", metavar="OUT", help="good entries to OUT, the rest to .tsv")
    p.set_defaults(func=_run_check)
    p = command(data, "features", "compute the feature cache training reads (every speed)")
    p.description = (
        "Log-mel frames of every utterance at every speed factor of the config's "
        "augmentation, stored once (fp16) and shared by every run; training builds what is "
        "missing itself. Location: data.feature_cache_dir, $ASR_FEATURE_CACHE or "
        "~/.cache/asr/features (docs/training.md)."
    )
    p.add_argument("--config", required=True, help="experiment TOML (features, augment, data)")
    p.add_argument("manifests", nargs="*", help="manifests (default: the config's train, valid)")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="config k=v")
    p.set_defaults(func=_run_features)
    spoken = "spoken by espeak-ng, flite, festival or hibari"
    p = command(data, "synth", f"a speech corpus from text, {spoken}")
    p.description = (
        "Voice, rate and pitch are drawn from the seed; re-running resumes. "
        "Opt-in neural voice: --voices hibari:heart (pip install '.[synth]')."
    )
    p.add_argument("--text", nargs="+", required=True, help="text files of sentences")
    p.add_argument("--out", required=True, help="output folder")
    add_fields(p, synth.SynthConfig)
    add_fields(p, synth.SentencePick)
    p.set_defaults(func=_run_synth)
    _add_prepare(data)


def _add_prepare(data) -> None:
    p = command(data, "prepare", "write manifests for a corpus in a known layout")
    p.description = "Durations come from the headers; dropped entries go to <name>.dropped.tsv."
    corpora = p.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    for name, corpus in importers.CORPORA.items():
        q = corpora.add_parser(name, help=corpus.summary, formatter_class=Formatter)
        q.add_argument("--root", required=True, help="corpus folder")
        q.add_argument("--out", required=True, help="folder for the <name>.jsonl manifests")
        add_fields(q, importers.DurationFilter)
        if corpus.parts:
            how = {"dest": "parts", "nargs": "+", "metavar": "NAME", "help": corpus.parts_help}
            q.add_argument(f"--{corpus.parts}", **how)
        if corpus.named:
            q.add_argument("--name", help="manifest name (default: the corpus name)")
        if corpus.download:
            q.add_argument("--download", action="store_true", help="fetch into --root first")
            q.add_argument("--mirror", help="base URL replacing https://www.openslr.org")
    p.set_defaults(func=_run_prepare)


def _run_tones(args) -> int:
    print(f"wrote {args.num} utterances: {make_tone_corpus(args.out, args.num, args.seed)}")
    return 0


def _run_split(args) -> int:
    kept, held = split_manifest(
        args.manifest, args.out_dir, args.held_out, args.speakers, args.seed
    )
    print(f"{kept[0]}: {kept[1]} utterances; {held[0]}: {held[1]}")
    return 0


def _run_prepare(args) -> int:
    limits = importers.DurationFilter(**given(args, importers.DurationFilter))
    extra = {k: vars(args)[k] for k in ("parts", "name", "download", "mirror") if k in args}
    for m in importers.prepare_corpus(args.corpus, args.root, args.out, limits=limits, **extra):
        print(f"{m.path}: {m.utterances} utterances, {m.hours:.3f} h, {m.speakers} speakers")
        if m.dropped:
            print(f"  dropped {m.dropped} by duration: {m.dropped_file}")
    return 0


def _run_check(args) -> int:
    cfg = check.check_config(args.config, **given(args, check.CheckConfig))
    report = check.check_manifest(args.manifest, cfg)
    for problem in report.problems:
        print(f"{args.manifest}:{problem}")
    print(report.summary)
    if args.write_clean:
        clean, dropped = check.write_clean(report, args.write_clean)
        kept = len(report.entries) - len(report.bad_lines)
        print(f"clean manifest: {clean} ({kept} entries); dropped lines: {dropped}")
    return 1 if report.problems else 0


def _run_synth(args) -> int:
    cfg = synth.SynthConfig(**given(args, synth.SynthConfig))
    made = synth.make_corpus(
        args.text, args.out, cfg, synth.SentencePick(**given(args, synth.SentencePick))
    )
    print(made.summary)
    return 0


def _add_lm(sub) -> None:
    tools = verbs(sub, "lm", "prepare text for and build n-gram language models")
    p = command(tools, "prepare-text", "raw books -> one normalized sentence per line")
    p.description = "--exclude-ids keeps an evaluation set's books (pg<ID>.txt) out of the LM."
    p.add_argument("books", nargs="+", help="book .txt files or folders of them")
    p.add_argument("--out", required=True, help="output text file")
    ids = "Gutenberg ids of books to leave out (ID,ID,...; repeatable)"
    p.add_argument("--exclude-ids", action="append", default=[], help=ids)
    p.set_defaults(func=_run_lm_prepare)
    p = command(tools, "build", "KenLM ARPA + binary LM and the lexicon from a text file")
    p.description = "Writes lm.arpa, lm.bin, lexicon.txt, lm.json (KenLM: install_kenlm.sh)."
    p.add_argument("--text", required=True, help="one normalized sentence per line")
    add_fields(p, lm.LMBuildOptions, choices={"unit": ["word", "char"]})
    p.add_argument("--out", required=True, help="output folder (e.g. <model folder>/lm)")
    p.set_defaults(func=_run_lm_build)


def _run_lm_prepare(args) -> int:
    stats = lm.prepare_text(args.books, args.out, lm.parse_book_ids(args.exclude_ids))
    books = f"{stats.books} books ({stats.excluded_books} excluded by id)"
    print(f"{args.out}: {stats.sentences} sentences, {stats.words} words from {books}")
    bad = f"{stats.dropped_sentences} sentences with characters outside the vocabulary"
    print(f"dropped {bad}: {stats.dropped_chars!r}")
    return 0


def _run_lm_build(args) -> int:
    info = lm.build_lm(args.text, args.out, **given(args, lm.LMBuildOptions))
    print(f"{args.out}: {info.order}-gram {info.unit} LM, vocabulary {info.vocab_size}")
    return 0


def _add_punctuate(sub) -> None:
    p = command(
        sub,
        "punctuate",
        "write text as a person would: case, punctuation, numbers (one utterance a line)",
        "Reads spoken-form text (any recognizer's words) and prints each line restored.",
    )
    p.add_argument("input", help="a UTF-8 text file, one utterance a line; - for stdin")
    p.add_argument("--model", help="punctuation model folder (the bundled punct-en)")
    p.set_defaults(func=_run_punctuate)


def _run_punctuate(args) -> int:
    lines = sys.stdin if args.input == "-" else read_lines(args.input)
    for text in restore_lines(lines, default_punctuator(args.model)):
        print(text, flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr", description="CTC speech recognition: transcribe, evaluate, train."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_inference, _add_training, _add_data, _add_lm, _add_serve, _add_punctuate):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, datefmt="%H:%M:%S")
    try:
        return args.func(args)
    except Exception as err:  # asr.errors decides which are the user's to fix
        message = user_message(err)
        if message is None:
            raise
        print(f"asr: error: {message}", file=sys.stderr)
        return exit_code(err)


if __name__ == "__main__":
    sys.exit(main())
