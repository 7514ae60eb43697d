"""The names of a model folder's files, in one place.

<model>/model.pt          inference checkpoint (asr export; asr train writes one too)
<model>/model.onnx        its ONNX graph, the light runtime's (asr export --onnx)
<model>/model.int8.onnx   an int8 graph (asr export --int8)
<model>/decoding.json     the tuned search settings (asr decode tune)
<model>/lm/lm.bin         KenLM binary, with lm.arpa, lexicon.txt and lm.json beside it
"""

from __future__ import annotations

__all__ = [
    "DECODING_FILE",
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
