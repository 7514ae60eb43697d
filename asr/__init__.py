"""asr: CTC speech recognition with log-mel features and a bidirectional LSTM/GRU.

import asr
recognizer = asr.load_model("exp/quickstart")  # no argument: the bundled model
print(recognizer.transcribe("speech.wav")[0].text)
"""

from asr.audio import AudioError, load_audio
from asr.checkpoint import CheckpointError
from asr.decode import DecodingOptions, Hypothesis
from asr.text import Vocabulary, normalize_text
from asr.transcribe import Recognizer, Transcript, load_model

__all__ = [
    "AudioError",
    "CheckpointError",
    "DecodingOptions",
    "Hypothesis",
    "Recognizer",
    "Transcript",
    "Vocabulary",
    "load_audio",
    "load_model",
    "normalize_text",
]
__version__ = "0.1.0"
