"""asr: CTC speech recognition with log-mel features and a bidirectional LSTM/GRU.

import asr
recognizer = asr.load_model("exp/quickstart")  # no argument: the bundled model
print(recognizer.transcribe("speech.wav")[0].text)
"""

from asr.align import WordTiming
from asr.audio import AudioError, load_audio
from asr.checkpoint import CheckpointError
from asr.decode import DecodingOptions, Hypothesis
from asr.segment import SegmentConfig
from asr.text import Vocabulary, normalize_text
from asr.transcribe import Recognizer, Transcript, load_model

__all__ = [
    "AudioError",
    "CheckpointError",
    "DecodingOptions",
    "Hypothesis",
    "Recognizer",
    "SegmentConfig",
    "Transcript",
    "Vocabulary",
    "WordTiming",
    "load_audio",
    "load_model",
    "normalize_text",
]
__version__ = "0.1.0"
