"""A word LSTM language model that rescores the beam's n-best lists (issue 32, direction 4).

The beam search keeps its n-gram LM; this model, trained here on the Gutenberg text
(`asr lm prepare-text`'s normalized sentences), adds a second opinion per hypothesis:

    score(h) = beam score(h) + weight * log P_lstm(h) + word_bonus * |h|

data.py reads the text into word ids, model.py is the network, train.py fits it within a
time budget and score.py gives a sentence's log-probability. benchmarks/rescore.py tunes
the weight and bonus on one set and reports WER on others.
"""
