"""What a model folder carries beside its checkpoint, and the one place decoding is resolved.

`asr decode tune` writes the best search settings to <model>/decoding.json; `asr export
--lm` puts a KenLM binary and its lexicon in <model>/lm. `resolve_decoding` merges those
with explicit overrides and applies the rules between them; `load_model`, `asr
transcribe`, `asr evaluate`, `asr decode tune` and `asr serve` all decode with what it
returns, so a model folder decodes the way it was tuned unless told otherwise.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from asr import jsonsafe
from asr.checkpoint import CheckpointError
from asr.config import ConfigError, option
from asr.decode import DecodingOptions
from asr.files import write_atomic
from asr.inference.lm import LMError, read_lm_info
from asr.layout import DECODING_FILE, LEXICON, LM_BINARY, LM_DIR


@dataclass(frozen=True)
class ExportOptions:
    """What `asr export` writes into a model folder beside model.pt."""

    half: bool = option(False, "store weights as float16")
    lm_dir: str | None = option(
        None, "LM folder (asr lm build) with lm.bin and lexicon.txt: OUT/lm", "--lm"
    )
    onnx: bool = option(False, "also OUT/model.onnx (the light runtime's graph)")
    int8: bool = option(
        False,
        "also OUT/model.int8.onnx: a quarter of the size, 7-bit per-channel weights so that "
        "AVX2-only CPUs stay accurate; measured on dev with en-default: WER 25.98%% against "
        "26.53%% fp32, log-probs within 0.7 (README, 'int8')",
    )


__all__ = [
    "DECODING_FILE",
    "DEFAULT_MODEL",
    "NO_LEXICON",
    "STREAM_MODEL",
    "decoding_grid",
    "lexicon_for",
    "live_model_path",
    "model_dir",
    "resolve_decoding",
    "resolve_model_path",
    "saved_decoding",
    "write_decoding",
]

# The bundled model, shipped inside the package (asr/models/en-phones links to the one copy
# in the source tree, data/models/en-phones; a wheel carries the files themselves). The
# phone model: the best on the validation speakers of both corpora (issue 32,
# recipes/default_model/README.md); hotwords outside its lexicon are pronounced by g2p-en.
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "en-phones"
# The bundled streaming model: what `asr serve` runs live streams on when no model is named
# (the default model's encoder is fully bidirectional; this one steps in chunks).
STREAM_MODEL = DEFAULT_MODEL.parent / "en-stream"
NO_LEXICON = "none"  # a lexicon_path asking for lexicon-free search even beside a word LM
_OPTIONS = {f.name: f for f in fields(DecodingOptions)}
_SAVED_FIELDS = tuple(name for name, f in _OPTIONS.items() if f.metadata["saved"])


def resolve_model_path(path: str | Path | None) -> Path:
    """`path` itself, or the bundled model when None (a clear error when it is missing)."""
    if path is not None:
        return Path(path)
    if not DEFAULT_MODEL.is_dir():
        raise CheckpointError(
            f"no bundled model at {DEFAULT_MODEL}; pass a model path (e.g. exp/quickstart)"
        )
    return DEFAULT_MODEL


def live_model_path(model: str | Path | None, stream_model: str | Path | None) -> Path | None:
    """The model live streams run on beside `model` (`asr serve --model --stream-model`):
    `stream_model` when given; the bundled streaming model when neither is (the bundled
    default cannot stream); else None: `model` itself, where it can stream."""
    if stream_model is not None:
        return Path(stream_model)
    if model is None and STREAM_MODEL.is_dir():
        return STREAM_MODEL
    return None


def model_dir(model: str | Path | None) -> Path:
    """The folder of a model: itself when a folder, else the folder of the file."""
    path = resolve_model_path(model)
    return path if path.is_dir() else path.parent


def resolve_decoding(model: str | Path | None = None, **overrides) -> DecodingOptions:
    """The decoding options of `model` (a folder, checkpoint or graph; None: the bundled one).

    Its folder's saved settings (`saved_decoding`), then `overrides` (DecodingOptions fields;
    a None value is not given), then the rules: a newly named LM brings the lexicon built
    beside it, not the folder's; an LM means beam search unless a decoder is named; a word
    LM needs a lexicon; lexicon_path "none" asks for lexicon-free search.

        resolve_decoding("exp/x", lm_path="exp/x/lm/lm.bin", lm_weight=1.5)
    """
    unknown = sorted(set(overrides) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown decoding option(s) {unknown}; known: {list(_OPTIONS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = saved_decoding(model)
    if "lm_path" in given:
        settings.pop("lexicon_path", None)
    settings.update(given)
    lm_path = settings.get("lm_path")
    if lm_path and "lexicon_path" not in settings:
        settings["lexicon_path"] = lexicon_for(lm_path)
    if settings.get("lexicon_path") == NO_LEXICON:
        settings["lexicon_path"] = None
    if lm_path and "decoder" not in settings:
        settings["decoder"] = "beam"
    info = read_lm_info(lm_path) if lm_path else None
    if info is not None and info.unit == "word" and not settings.get("lexicon_path"):
        raise LMError(f"{lm_path} is a word LM: give it a lexicon (asr lm build writes one)")
    try:
        return DecodingOptions(**settings)
    except (ValueError, TypeError) as err:  # TypeError: a mistyped value in decoding.json
        raise ConfigError(f"decoding options: {err}") from err


def decoding_grid(
    base: DecodingOptions, lm_weights: Sequence[float], word_scores: Sequence[float]
) -> list[DecodingOptions]:
    """`base` with every (lm_weight, word_score) pair, in grid order, each checked as
    DecodingOptions checks its values (NaN, infinity, out of range): before any decoding,
    not after the grid points before it. ConfigError for an empty grid or a bad value."""
    if not lm_weights or not word_scores:
        raise ConfigError("the tuning grid is empty: give at least one LM weight and word score")
    try:
        return [replace(base, lm_weight=w, word_score=s) for w in lm_weights for s in word_scores]
    except (ValueError, TypeError) as err:
        raise ConfigError(f"tuning grid: {err}") from err


def saved_decoding(model: str | Path | None) -> dict:
    """Decoding settings a model folder carries, as DecodingOptions fields.

    decoding.json (from `asr decode tune`) wins; else an LM built into <model>/lm (lm.bin,
    lexicon.txt) means beam search with it; else nothing (greedy).
    """
    folder = model_dir(model)
    saved = folder / DECODING_FILE
    if saved.is_file():
        try:
            record = jsonsafe.load_file(saved)
        except jsonsafe.JSONInputError as err:
            raise ConfigError(str(err)) from None
        if not isinstance(record, dict):
            raise ConfigError(f"{saved}: expected a JSON object, got {type(record).__name__}")
        settings = {k: record[k] for k in _SAVED_FIELDS if k in record}
        _check_types(settings, saved)
        if settings.get("unk_score", 0) is None:
            settings["unk_score"] = float("-inf")
        for key in ("lm_path", "lexicon_path"):
            if settings.get(key) and not isinstance(settings[key], str):
                raise ConfigError(f"{saved}: {key} must be a path string, got {settings[key]!r}")
            if settings.get(key):
                settings[key] = str(folder / settings[key])  # an absolute path stays as it is
        return settings
    if (folder / LM_DIR / LM_BINARY).is_file():
        lm = folder / LM_DIR / LM_BINARY
        return {"decoder": "beam", "lm_path": str(lm), "lexicon_path": lexicon_for(lm)}
    return {}


def _check_types(settings: dict, source: Path) -> None:
    """ConfigError naming the file for a saved value of the wrong JSON type ("2.0" for 2.0)."""
    hints = typing.get_type_hints(DecodingOptions)
    for key, value in settings.items():
        kinds = typing.get_args(hints[key]) or (hints[key],)
        if value is None and (type(None) in kinds or key == "unk_score"):
            continue
        allowed = tuple(k for k in kinds if k is not type(None))
        if float in allowed:
            allowed += (int,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join(k.__name__ for k in allowed)
            raise ConfigError(f"{source}: {key} must be {names}, got {value!r}")


def write_decoding(folder: str | Path, options: DecodingOptions, extra: dict) -> Path:
    """Save the search settings of `options` (and `extra`, e.g. the dev WER) as decoding.json
    in a model folder."""
    folder = Path(folder)
    path = folder / DECODING_FILE
    record = {k: v for k, v in options.to_dict().items() if k in _SAVED_FIELDS}
    for key in ("lm_path", "lexicon_path"):
        if record[key] is not None:  # relative to the folder when inside it: folders move
            file = Path(record[key]).resolve()
            inside = file.is_relative_to(folder.resolve())
            record[key] = str(file.relative_to(folder.resolve()) if inside else file)
    return write_atomic(path, json.dumps({**record, **extra}, indent=2) + "\n")


def lexicon_for(lm_path: str | Path) -> str | None:
    """The lexicon built beside a word LM (None for a character LM, or when there is none)."""
    info = read_lm_info(lm_path)
    lexicon = Path(lm_path).parent / LEXICON
    if (info is None or info.unit == "word") and lexicon.is_file():
        return str(lexicon)
    return None
