"""The tagger on onnxruntime (numpy only, no torch): the light install runs it.

A model folder (data/models/punct-en) holds model.onnx (word ids (B, T) in; case logits
(B, T, 4) and punct logits (B, T, 5) out), vocab.txt (one word a line, line 1 the unknown
word) and labels.json (the case and mark names, the table of mixed forms such as
"mcdonald" -> "McDonald", the network's config, and the logit offsets calibrate.py tuned).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.usererror import UserError

__all__ = ["LABELS_FILE", "MODEL_FILE", "VOCAB_FILE", "PunctModelError", "Tagging", "TaggerRuntime"]

MODEL_FILE, VOCAB_FILE, LABELS_FILE = "model.onnx", "vocab.txt", "labels.json"


class PunctModelError(UserError, ValueError):
    """A punctuation model folder that is missing or incomplete."""


@dataclass(frozen=True)
class Tagging:
    """Per spoken word: its case name, the mark after it, and its mixed form ("" if none)."""

    cases: list[str]
    puncts: list[str]
    mixed: list[str]


class TaggerRuntime:
    """A loaded punctuation model folder."""

    def __init__(self, folder: str | Path) -> None:
        from asr.inference.runtime_onnx import cpu_session

        folder = Path(folder)
        for name in (MODEL_FILE, VOCAB_FILE, LABELS_FILE):
            if not (folder / name).is_file():
                raise PunctModelError(f"{folder}: not a punctuation model folder (no {name})")
        try:
            vocabulary = (folder / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
            labels = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
            self.cases, self.puncts = labels["cases"], labels["puncts"]
            self.mixed_forms: dict[str, str] = labels["mixed"]
            # logit offsets tuned on the development books (calibrate.py); none: zeros
            self.case_bias = np.array(labels.get("case_bias", [0.0] * len(self.cases)))
            self.punct_bias = np.array(labels.get("punct_bias", [0.0] * len(self.puncts)))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError) as err:
            raise PunctModelError(f"{folder}: cannot read the model's files ({err})") from err
        for name, bias, names in (
            ("case_bias", self.case_bias, self.cases),
            ("punct_bias", self.punct_bias, self.puncts),
        ):
            if bias.shape != (len(names),) or not np.all(np.isfinite(bias)):
                raise PunctModelError(
                    f"{folder / LABELS_FILE}: {name} must be {len(names)} finite numbers"
                )
        self.index = {w: i for i, w in enumerate(vocabulary)}
        self.session = cpu_session(folder / MODEL_FILE, 1, PunctModelError)
        self.folder = folder

    def logits_of_ids(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, T) word ids -> case logits (B, T, C), punct logits (B, T, P); no offsets."""
        case_logits, punct_logits = self.session.run(None, {"word_ids": ids.astype(np.int64)})
        return case_logits, punct_logits

    def logits(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Case logits (T, C) and punct logits (T, P) of lower-case spoken words."""
        ids = np.array([[self.index.get(w, 0) for w in words]], dtype=np.int64)  # (1, T)
        case_logits, punct_logits = self.logits_of_ids(ids)
        return case_logits[0], punct_logits[0]

    def tag(self, words: list[str]) -> Tagging:
        """Each word's case and following mark (most likely labels)."""
        if not words:
            return Tagging([], [], [])
        case_logits, punct_logits = self.logits(words)
        cases = [self.cases[i] for i in (case_logits + self.case_bias).argmax(-1)]
        puncts = [self.puncts[i] for i in (punct_logits + self.punct_bias).argmax(-1)]
        mixed = [
            self.mixed_forms.get(w, "") if c == "mixed" else ""
            for w, c in zip(words, cases, strict=True)
        ]
        return Tagging(cases, puncts, mixed)
