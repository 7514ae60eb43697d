"""Inference around the acoustic model: the two log-prob runtimes, model folders and their
decoding settings, language models, word alignment, long-file segmentation, output formats,
batch transcription and export (decoder tuning is asr/tune.py).

Each module is imported on its own; this package imports nothing (the light runtime must
not load torch).
"""
