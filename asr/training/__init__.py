"""Training: the run (loop), its stages (config, splits, trainer, losses, schedule, epoch,
validate, logs), data, batching, augmentation, distribution, checkpoints and plots.

Nothing is imported here: `import asr.training.loop` (or `asr.fit`) loads the training stack.
"""
