"""Inference around the acoustic model: the two log-prob runtimes, model folders and their
decoding settings, language models, word alignment, long-file segmentation, output formats,
export, and decoder tuning.

Each module is imported on its own; this package imports nothing (the light runtime must
not load torch).
"""
