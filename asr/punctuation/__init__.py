"""Readable transcripts: case, punctuation, numbers and titles restored from spoken words.

The run-time side (this package's namespace) needs numpy and onnxruntime only; the torch
side (model.py, train.py) is imported by training alone.

    from asr.punctuation import restore
    restore("and mister john dashwood paid twenty five dollars".split()).text
    # -> "And Mr. John Dashwood paid $25."
"""

from asr.punctuation.itn import ItnConfig, Token, inverse_normalize
from asr.punctuation.restore import (
    DEFAULT_PUNCT_MODEL,
    PunctInputError,
    Punctuator,
    Restored,
    RestoreOptions,
    WrittenWord,
    default_punctuator,
    read_lines,
    restore,
    restore_lines,
    restore_timed,
    restore_transcript,
)
from asr.punctuation.runtime import PunctModelError

__all__ = [
    "DEFAULT_PUNCT_MODEL",
    "ItnConfig",
    "PunctModelError",
    "PunctInputError",
    "Punctuator",
    "RestoreOptions",
    "Restored",
    "Token",
    "WrittenWord",
    "default_punctuator",
    "inverse_normalize",
    "read_lines",
    "restore",
    "restore_lines",
    "restore_timed",
    "restore_transcript",
]
