"""The name-to-function tables are the extension points docs/architecture.md names: an entry
added to DECODERS, FORMATS or CORPORA, or a field added to DecodingOptions, reaches the
command line and the model folder's saved settings with no other file touched."""

from __future__ import annotations

import argparse
from dataclasses import fields

import numpy as np
import pytest
import soundfile as sf

from asr.cli import build_parser, main
from asr.corpora.importers import CORPORA, Corpus
from asr.decode import DECODERS, DecodingOptions, Hypothesis, decode
from asr.inference import formats
from asr.inference.model_folder import resolve_decoding, saved_decoding, write_decoding
from asr.manifest import Utterance, read_manifest
from asr.text import Vocabulary

VOCAB = Vocabulary.english()


def _subcommand(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def test_a_new_decoder_is_an_option_value_a_flag_choice_and_dispatched(monkeypatch):
    def first_frame(log_probs, lengths, vocab, options):
        return [Hypothesis(vocab.decode([int(np.argmax(row[0]))])) for row in log_probs]

    monkeypatch.setitem(DECODERS, "first", first_frame)
    log_probs = np.log(np.full((1, 2, len(VOCAB)), 0.01, np.float32))
    log_probs[0, 0, VOCAB.encode("z")[0]] = 0.0
    (hyp,) = decode(log_probs, np.array([2]), VOCAB, DecodingOptions(decoder="first"))
    assert hyp.text == "z"
    args = build_parser().parse_args(["transcribe", "x.wav", "--decoder", "first"])
    assert args.decoder == "first"


def test_every_decoding_option_has_a_flag_that_reaches_resolve_decoding(tmp_path):
    """Each DecodingOptions field: a flag named by its metadata, parsed to its type."""
    values = {"decoder": "beam", "beam_size": 7, "beam_size_token": 5, "beam_threshold": 9.5}
    values |= {"lm_weight": 0.5, "word_score": 1.5, "unk_score": -3.0, "sil_score": 0.25}
    values |= {"log_add": False, "nbest": 2, "num_workers": 3, "lexicon_path": "none"}
    argv = ["transcribe", "x.wav", "--model", str(tmp_path)]
    for f in fields(DecodingOptions):
        if f.name in values:
            flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
            value = values[f.name]
            argv += [f"--no-{flag[2:]}"] if value is False else [f"{flag}={value}"]
    args = build_parser().parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in fields(DecodingOptions) if f.name in args}
    assert given == values
    options = resolve_decoding(tmp_path, **given)
    assert options == DecodingOptions(**{**values, "lexicon_path": None})


def test_saved_options_round_trip_through_decoding_json(tmp_path):
    """Every field marked saved goes to decoding.json and comes back; the rest stay out."""
    options = DecodingOptions(decoder="beam", beam_size=9, beam_size_token=4, word_score=1.0)
    options = DecodingOptions(**{**vars(options), "log_add": False, "nbest": 3})
    write_decoding(tmp_path, options, {"dev_wer": 0.5})
    saved = saved_decoding(tmp_path)
    expected = {f.name for f in fields(DecodingOptions) if f.metadata["saved"]}
    assert set(saved) == expected and "nbest" not in saved and "num_workers" not in saved
    assert all(saved[name] == getattr(options, name) for name in expected)


def test_a_new_output_format_is_a_choice_and_written(monkeypatch, tmp_path, capsys):
    shout = formats.OutputFormat(lambda t, _: t.text.upper() + "\n", False, "upper case")
    monkeypatch.setitem(formats.FORMATS, "shout", shout)
    help_text = _subcommand(build_parser(), "transcribe").format_help()
    assert "shout: upper case" in " ".join(help_text.split())  # wherever argparse wraps it
    args = build_parser().parse_args(["transcribe", "x.wav", "--output-format", "shout"])
    assert args.output_format == "shout"
    transcript = _transcript("a cab", tmp_path / "talk.wav")
    written = formats.write_transcripts([transcript], "shout", tmp_path / "out", DecodingOptions())
    assert [p.name for p in written] == ["talk.shout"] and written[0].read_text() == "A CAB\n"


def _transcript(text: str, path):
    from asr.inference.recognizer import Transcript

    return Transcript(str(path), text, 1.0, Hypothesis(text))


def test_a_new_corpus_is_a_prepare_command(monkeypatch, tmp_path, capsys):
    """An importer and a CORPORA entry: `asr data prepare <name>` with the common options."""
    root = tmp_path / "corpus"
    root.mkdir()
    sf.write(root / "one.wav", np.zeros(16_000, np.float32), 16_000)
    (root / "one.txt").write_text("hello there\n")

    def read_pairs(root, parts, name, out_dir):
        return {name or "pairs": [Utterance(str(w), 1.0, w.with_suffix(".txt").read_text())
                                  for w in sorted(root.glob("*.wav"))]}  # fmt: skip

    monkeypatch.setitem(CORPORA, "pairs", Corpus(read_pairs, "<id>.wav beside <id>.txt"))
    out = tmp_path / "manifests"
    assert main(["data", "prepare", "pairs", "--root", str(root), "--out", str(out)]) == 0
    assert [u.text.strip() for u in read_manifest(out / "pairs.jsonl")] == ["hello there"]
    assert "pairs.jsonl: 1 utterances" in capsys.readouterr().out


def test_inference_and_corpora_never_import_training():
    """Training sits beside inference, not under it: nothing the light install runs
    (inference/, corpora/, the stages) imports asr.training (cli.py and asr/__init__.py
    name it only inside the training commands and lazily)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "asr"
    light = [*root.glob("inference/*.py"), *root.glob("corpora/*.py")]
    light += [p for p in root.glob("*.py") if p.name not in ("cli.py", "__init__.py")]
    offenders = []
    for path in light:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("asr.training")]
    assert offenders == []


def test_a_new_encoder_is_a_table_entry(monkeypatch):
    import torch

    import asr.model
    from asr.model import AcousticModel, ModelConfig

    class Linear(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.output_size = 5
            self.layer = torch.nn.Linear(cfg.hidden_size, 5)

        def forward(self, x, lengths, tap=0):
            return self.layer(x), None

    monkeypatch.setitem(asr.model.ENCODERS, "linear", Linear)
    model = AcousticModel(ModelConfig(encoder="linear", hidden_size=8, conv_channels=4), 40, 29)
    log_probs, out_lens = model(torch.randn(2, 20, 40), torch.tensor([20, 12]))
    assert log_probs.shape == (2, 5, 29) and out_lens.tolist() == [5, 3]
    with pytest.raises(ValueError, match="model.encoder must be one of"):
        AcousticModel(ModelConfig(encoder="conformer"), 40, 29)
