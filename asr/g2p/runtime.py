"""The G2P network on onnxruntime (numpy only): the light install runs it.

A model folder (data/models/g2p-en) holds model.onnx (letter ids (1, L) in, per-frame phone
log-probabilities (1, L * repeat, P) out) and labels.json (the letters, the phones with the
CTC blank first, the network's config).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from asr.usererror import UserError

__all__ = ["BUNDLED_G2P", "LABELS_FILE", "MODEL_FILE", "G2PModelError", "G2PRuntime", "collapse"]

MODEL_FILE, LABELS_FILE = "model.onnx", "labels.json"
# The bundled model (asr/models/g2p-en links to data/models/g2p-en, as en-phones does).
BUNDLED_G2P = Path(__file__).resolve().parent.parent / "models" / "g2p-en"


class G2PModelError(UserError, ValueError):
    """A G2P model folder that is missing or unreadable."""


def collapse(frames: Iterable[int], symbols: Sequence[str]) -> list[str]:
    """Greedy CTC: merge repeated frame labels, drop blanks (index 0)."""
    out, previous = [], 0
    for label in frames:
        label = int(label)
        if label != previous and label != 0:
            out.append(symbols[label])
        previous = label
    return out


class G2PRuntime:
    """A loaded G2P model folder: words -> ARPAbet phones."""

    def __init__(self, folder: str | Path = BUNDLED_G2P) -> None:
        from asr.inference.runtime_onnx import cpu_session

        folder = Path(folder)
        for name in (MODEL_FILE, LABELS_FILE):
            if not (folder / name).is_file():
                raise G2PModelError(f"{folder}: not a G2P model folder (no {name})")
        try:
            labels = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
            self.phone_symbols: list[str] = labels["phones"]
            self.letter_ids = {c: i for i, c in enumerate(labels["letters"])}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise G2PModelError(f"{folder / LABELS_FILE}: cannot read it ({err})") from err
        self.session = cpu_session(folder / MODEL_FILE, 1, G2PModelError)
        self.folder = folder

    def word(self, word: str) -> list[str]:
        """Phones of one word ([] for a word with no letter the model knows)."""
        ids = [self.letter_ids.get(c, 0) for c in word.lower()]
        if not any(ids):
            return []
        letters = np.array([ids], dtype=np.int64)  # (1, L)
        (log_probs,) = self.session.run(None, {"letters": letters})  # (1, L * repeat, P)
        return collapse(log_probs[0].argmax(-1), self.phone_symbols)

    def phones(self, words: Sequence[str]) -> dict[str, list[str]]:
        """Each word's phones; words it cannot spell are left out (a Pronouncer fallback)."""
        found = {w: self.word(w) for w in dict.fromkeys(words)}
        return {w: p for w, p in found.items() if p}
