"""Corpora: importers of known layouts, downloads, speech synthesis, tone corpora, checks.

Each module is imported on its own; this package imports nothing.
"""
