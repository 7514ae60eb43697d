"""What a model folder carries beside its checkpoint: decoding.json and lm/.

`asr decode tune` writes the best search settings to <model>/decoding.json; `asr export
--lm` puts a KenLM binary and its lexicon in <model>/lm. `transcribe`, `evaluate` and
`load_model` read them here, so a model folder decodes the way it was tuned by default.
"""

from __future__ import annotations

import json
from pathlib import Path

from asr.decode import DecodingOptions
from asr.inference.lm import LEXICON, LM_BINARY, read_lm_info

__all__ = ["DECODING_FILE", "default_decoding", "lexicon_for", "write_decoding"]

DECODING_FILE = "decoding.json"
_SAVED_FIELDS = ("decoder", "beam_size", "beam_threshold", "lm_path", "lexicon_path")
_SAVED_FIELDS += ("lm_weight", "word_score", "unk_score", "sil_score", "log_add")


def write_decoding(model_dir: str | Path, options: DecodingOptions, extra: dict) -> Path:
    """Save the search settings of `options` (and `extra`, e.g. the dev WER) as decoding.json."""
    folder = Path(model_dir)
    path = folder / DECODING_FILE
    record = {k: v for k, v in options.to_dict().items() if k in _SAVED_FIELDS}
    for key in ("lm_path", "lexicon_path"):
        if record[key] is not None:  # relative to the folder when inside it: folders move
            file = Path(record[key]).resolve()
            inside = file.is_relative_to(folder.resolve())
            record[key] = str(file.relative_to(folder.resolve()) if inside else file)
    path.write_text(json.dumps({**record, **extra}, indent=2) + "\n")
    return path


def default_decoding(model: str | Path | None) -> dict:
    """Decoding settings a model folder carries, as DecodingOptions fields.

    decoding.json (from `asr decode tune`) wins; else an LM built into <model>/lm (lm.bin,
    lexicon.txt) means beam search with it; else nothing (greedy).
    """
    if model is None:
        return {}
    folder = Path(model) if Path(model).is_dir() else Path(model).parent
    saved = folder / DECODING_FILE
    if saved.is_file():
        try:
            record = json.loads(saved.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{saved}: not valid JSON ({err})") from err
        fields = {k: record[k] for k in _SAVED_FIELDS if k in record}
        if fields.get("unk_score", 0) is None:
            fields["unk_score"] = float("-inf")
        for key in ("lm_path", "lexicon_path"):
            if fields.get(key):
                fields[key] = str(folder / fields[key])  # an absolute path stays as it is
        return fields
    if (folder / "lm" / LM_BINARY).is_file():
        lm = folder / "lm" / LM_BINARY
        return {"decoder": "beam", "lm_path": str(lm), "lexicon_path": lexicon_for(lm)}
    return {}


def lexicon_for(lm_path: str | Path) -> str | None:
    """The lexicon built beside a word LM (None for a character LM, or when there is none)."""
    info = read_lm_info(lm_path)
    lexicon = Path(lm_path).parent / LEXICON
    if (info is None or info.unit == "word") and lexicon.is_file():
        return str(lexicon)
    return None
