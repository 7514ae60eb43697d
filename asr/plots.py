"""Moved to asr/training/plots.py. This alias lets training runs started before the move
draw their curves (they import it by its old name); delete it once no such run is left."""

from asr.training.plots import plot_training_curves

__all__ = ["plot_training_curves"]
