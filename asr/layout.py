"""The names of a model folder's files, in one place.

<model>/model.pt          inference checkpoint (asr export; asr train writes one too)
<model>/model.onnx        its ONNX graph, the light runtime's (asr export --onnx)
<model>/model.int8.onnx   an int8 graph (asr export --int8)
<model>/decoding.json     the tuned search settings (asr decode tune)
<model>/lm/lm.bin         KenLM binary, with lm.arpa, lexicon.txt and lm.json beside it

and of an experiment folder's (asr train):

<exp>/last.pt             full training state (--resume continues from it)
<exp>/best.pt             the training state of the best epoch so far
<exp>/model.pt            that epoch's weights alone (MODEL_FILE: the folder is a model folder)
<exp>/epochs/epoch-NNN.pt each epoch's weights and metrics (asr average reads them)
<exp>/averaged.pt         asr average's (or train.average_last's) mean of some of those
"""

from __future__ import annotations

import re

__all__ = [
    "AVERAGED_FILE",
    "BEST_FILE",
    "DECODING_FILE",
    "EPOCHS_DIR",
    "LAST_FILE",
    "TRAINED_FILES",
    "epoch_file",
    "epoch_number",
    "INT8_FILE",
    "LEXICON",
    "LM_ARPA",
    "LM_BINARY",
    "LM_DIR",
    "LM_FILES",
    "LM_INFO",
    "MODEL_FILE",
    "ONNX_FILE",
    "ONNX_FILES",
]

MODEL_FILE = "model.pt"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
ONNX_FILES = (ONNX_FILE, INT8_FILE)  # the graphs a folder may hold, the first found runs
DECODING_FILE = "decoding.json"
LM_DIR = "lm"  # the LM folder inside a model folder (asr lm build writes one anywhere)
LM_BINARY = "lm.bin"
LM_ARPA = "lm.arpa"
LEXICON = "lexicon.txt"
LM_INFO = "lm.json"
LM_FILES = (LM_BINARY, LEXICON, LM_INFO)  # what asr export --lm copies into a folder

LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
AVERAGED_FILE = "averaged.pt"
EPOCHS_DIR = "epochs"
TRAINED_FILES = (MODEL_FILE, BEST_FILE, LAST_FILE)  # any of them: the folder holds a model
_EPOCH_FILE = re.compile(r"epoch-(\d+)\.pt")


def epoch_file(epoch: int) -> str:
    """Epoch `epoch`'s checkpoint inside an experiment folder: epochs/epoch-NNN.pt."""
    return f"{EPOCHS_DIR}/epoch-{epoch:03d}.pt"


def epoch_number(name: str) -> int | None:
    """The epoch of a file name `epoch_file` wrote (epoch-NNN.pt), else None."""
    match = _EPOCH_FILE.fullmatch(name)
    return int(match.group(1)) if match else None
