"""Exporting a trained model for shipping: inference weights only, optionally half precision,
with its language model and lexicon beside it, and optionally the ONNX graph the light
runtime runs (asr/inference/onnx_export.py).

    asr export exp/default_model --out data/models/en-default --half --lm exp/lm/small --onnx
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import torch

from asr.checkpoint import load_checkpoint, save_checkpoint
from asr.decode import TRIE_MAX_WORDS
from asr.inference.lm import LMError
from asr.inference.model_folder import ExportOptions
from asr.layout import LEXICON, LM_DIR, LM_FILES, MODEL_FILE, ONNX_FILES
from asr.model import drop_aux_head
from asr.text import WORD_BOUNDARY, Vocabulary

log = logging.getLogger(__name__)

__all__ = ["export_model"]

_INFERENCE_KEYS = ("config", "vocab", "features", "model")


def export_model(checkpoint: str | Path, out_dir: str | Path, **options) -> Path:
    """Write out_dir/model.pt (config, vocabulary, statistics, weights; no training state) and
    what `options` (ExportOptions fields) add: with `lm_dir`, out_dir/lm/{lm.bin,
    lexicon.txt, lm.json}; with `onnx`, model.onnx traced from that model.pt (`half`:
    float16 storage too), with `int8` also model.int8.onnx. Returns the model file.

    The folder changes all at once or not at all: everything is written into a staging
    folder beside it and moved in only when all of it is written, so a failed export (a
    bad `--lm`, a full disk, a failed trace) leaves the folder as it was. A graph this
    export does not write is removed: the default runtime would run an old model.onnx
    beside the new model.pt. Other files (decoding.json) are kept.
    """
    how = ExportOptions(**options)
    half, lm_dir = how.half, how.lm_dir
    record = load_checkpoint(checkpoint)
    payload = {key: record[key] for key in _INFERENCE_KEYS}
    model_config, payload["model"] = drop_aux_head(record["config"]["model"], record["model"])
    payload["config"] = {**record["config"], "model": model_config}
    if half:  # the recognizer computes in fp32; fp16 storage halves the file
        payload["model"] = {
            k: v.half() if v.is_floating_point() else v for k, v in payload["model"].items()
        }
    if lm_dir is not None:
        _check_lm(Path(lm_dir))
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as tmp:
        staging = Path(tmp) / "new"
        save_checkpoint(staging / MODEL_FILE, payload)
        if lm_dir is not None:
            phonetic = Vocabulary.from_list(record["vocab"]).phonetic
            _copy_lm(Path(lm_dir), staging / LM_DIR, phonetic)
        if how.onnx or how.int8:
            from asr.inference.onnx_export import export_onnx

            export_onnx(staging / MODEL_FILE, staging, half, how.int8)
        _move_in(staging, out_dir, Path(tmp) / "old")
    return out_dir / MODEL_FILE


def _move_in(staging: Path, out_dir: Path, old: Path) -> None:
    """The staged files into `out_dir` by renames (the same file system: nothing left to
    fail but the renames); graphs not staged are removed, an LM folder replaced whole
    (the old one moved to `old`, deleted with the staging folder)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, *ONNX_FILES):
        if (staging / name).is_file():
            os.replace(staging / name, out_dir / name)
        else:
            (out_dir / name).unlink(missing_ok=True)
    if (staging / LM_DIR).is_dir():
        if (out_dir / LM_DIR).exists():
            os.replace(out_dir / LM_DIR, old)
        os.replace(staging / LM_DIR, out_dir / LM_DIR)


def _check_lm(lm_dir: Path) -> None:
    missing = [name for name in LM_FILES[:2] if not (lm_dir / name).is_file()]
    if missing:
        raise LMError(f"{lm_dir}: LM folder lacks {missing} (made by `asr lm build`)")


def _copy_lm(lm_dir: Path, target: Path, phonetic: bool) -> None:
    """The LM files into `target`; for a phone model the lexicon is respelled in phones."""
    target.mkdir(parents=True, exist_ok=True)
    for name in LM_FILES:
        if name == LEXICON and phonetic:
            write_phone_lexicon(lm_dir / name, target / name)
        elif (lm_dir / name).is_file():
            shutil.copyfile(lm_dir / name, target / name)


def write_phone_lexicon(char_lexicon: Path, out: Path) -> None:
    """'word DH AH |' lines for the words of a character lexicon, pronounced by CMUdict and
    espeak-ng; words neither can pronounce are left out, and counted in the log. A
    pronunciation keeps its first TRIE_MAX_WORDS words (the lexicon's order: commonest
    first), the ones the search's trie would keep; the rest are counted in the log."""
    from asr.pronounce import Pronouncer

    with char_lexicon.open(encoding="utf-8") as f:
        words = list(dict.fromkeys(line.split(maxsplit=1)[0] for line in f if line.strip()))
    pronouncer = Pronouncer.default()
    pronouncer.prepare(words)
    per_pronunciation: Counter[tuple[str, ...]] = Counter()
    lines = []
    for word in words:
        phones = tuple(pronouncer.phones(word))  # once per word: misses are counted
        per_pronunciation[phones] += 1
        if phones and per_pronunciation[phones] <= TRIE_MAX_WORDS:
            lines.append(f"{word} {' '.join(phones)} {WORD_BOUNDARY}\n")
    out.write_text("".join(lines), encoding="utf-8")
    pronounced = len(words) - per_pronunciation[()]
    log.info(
        "%s: %d of %d words pronounced; %d left out past %d words per pronunciation",
        out,
        pronounced,
        len(words),
        pronounced - len(lines),
        TRIE_MAX_WORDS,
    )


def weights_dtype(model_file: str | Path) -> torch.dtype:
    """The storage dtype of a checkpoint's first floating-point weight."""
    weights = load_checkpoint(model_file)["model"]
    return next(v.dtype for v in weights.values() if v.is_floating_point())
