"""Grapheme to phoneme: spelled words -> ARPAbet phones, for words no dictionary has.

A small bidirectional LSTM trained here on CMUdict with CTC (data.py, model.py, train.py),
run by onnxruntime without torch (runtime.py), so the light install can give a phone model
the pronunciations of hotwords outside its lexicon without a system espeak-ng.

    G2PRuntime(BUNDLED_G2P).phones(["vexation"])  # {"vexation": ["V", "EH", "K", "S", ...]}
"""

from asr.g2p.runtime import BUNDLED_G2P, G2PModelError, G2PRuntime

__all__ = ["BUNDLED_G2P", "G2PModelError", "G2PRuntime"]
