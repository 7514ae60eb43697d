"""Moved to asr/training/average.py. This alias lets training runs started before the move
average their checkpoints at the end (they import it by its old name); delete it once no
such run is left."""

from asr.training.average import average_experiment

__all__ = ["average_experiment"]
