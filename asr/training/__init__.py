"""Training: the loop, its data, batching, augmentation, distribution, checkpoints and plots.

Nothing is imported here: `import asr.training.loop` (or `asr.fit`) loads the training stack.
"""
