"""CTC-CRF: the denominator's log Z against brute force, its gradient, and training with it."""

import itertools
import json

import pytest
import torch

from asr.config import ConfigError, apply_overrides, from_dict
from asr.corpora.tones import make_tone_corpus
from asr.text import Vocabulary
from asr.training.config import ExperimentConfig, TrainConfig
from asr.training.ctc_crf import (
    CtcCrfLoss,
    denominator_from_sequences,
    graph_from_bigram,
    log_partition,
)
from asr.training.loop import fit
from asr.training.losses import make_criterion

BLANK = 0
SEQUENCES = [[1, 2, 3], [1, 1, 2], [3, 2], [2], [2, 3, 3, 1]]


def collapse(path):
    labels, prev = [], None
    for s in path:
        if s != prev and s != BLANK:
            labels.append(s)
        prev = s
    return labels


def brute_force(log_probs, length, den):
    """{label sequence: log-sum of its paths' scores} over every path of `length` frames."""
    scores = {}
    for path in itertools.product(range(log_probs.shape[-1]), repeat=length):
        labels = tuple(collapse(path))
        lm = den.sequence_log_prob(torch.tensor([labels or [0]]), torch.tensor([len(labels)]))
        score = sum(log_probs[t, s] for t, s in enumerate(path)) + lm[0]
        scores.setdefault(labels, []).append(score)
    return {k: torch.logsumexp(torch.stack(v), 0) for k, v in scores.items()}


def random_log_probs(batch, frames, vocab=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, vocab, generator=gen, dtype=torch.float64).log_softmax(-1)


@pytest.mark.parametrize("order", [1, 2])
def test_log_z_is_the_sum_over_every_path(order):
    den = denominator_from_sequences(SEQUENCES, 4, BLANK, order)
    log_probs = random_log_probs(2, 5)
    lengths = torch.tensor([5, 3])
    log_z = log_partition(log_probs, lengths, den)
    for b in range(2):
        paths = brute_force(log_probs[b], int(lengths[b]), den)
        expected = torch.logsumexp(torch.stack(list(paths.values())), 0)
        torch.testing.assert_close(log_z[b], expected)


def test_the_loss_is_minus_log_p_of_the_labels():
    den = denominator_from_sequences(SEQUENCES, 4, BLANK)
    log_probs = random_log_probs(1, 5, seed=3)
    paths = brute_force(log_probs[0], 5, den)
    log_z = torch.logsumexp(torch.stack(list(paths.values())), 0)
    loss = CtcCrfLoss(den, BLANK)(
        log_probs.transpose(0, 1), torch.tensor([[1, 2, 2]]), torch.tensor([5]), torch.tensor([3])
    )
    torch.testing.assert_close(loss, log_z - paths[(1, 2, 2)])
    assert float(loss) > 0


def test_the_gradient_matches_finite_differences():
    den = denominator_from_sequences(SEQUENCES, 4, BLANK)
    log_probs = random_log_probs(3, 6, seed=1).requires_grad_(True)
    lengths = torch.tensor([6, 4, 1])
    assert torch.autograd.gradcheck(lambda x: log_partition(x, lengths, den), (log_probs,))


def test_padding_frames_change_nothing():
    den = denominator_from_sequences(SEQUENCES, 4, BLANK)
    log_probs = random_log_probs(2, 7, seed=2)
    together = log_partition(log_probs, torch.tensor([7, 4]), den)
    alone = log_partition(log_probs[1:, :4], torch.tensor([4]), den)
    torch.testing.assert_close(together[1], alone[0])


def test_arcs_of_weight_one_make_it_plain_ctc():
    """log-weights 0 everywhere: every path counts once, Z = 1, the loss is CTC's."""
    den = graph_from_bigram(torch.zeros(4, 4, dtype=torch.float64), [1, 2, 3], BLANK)
    log_probs = random_log_probs(3, 8, seed=4)
    lengths = torch.tensor([8, 6, 5])
    torch.testing.assert_close(log_partition(log_probs, lengths, den), torch.zeros(3).double())
    targets, target_lens = torch.tensor([[1, 2, 3], [2, 2, 0], [3, 0, 0]]), torch.tensor([3, 2, 1])
    args = (log_probs.transpose(0, 1), targets, lengths, target_lens)
    ctc = torch.nn.CTCLoss(blank=BLANK, reduction="sum")
    torch.testing.assert_close(CtcCrfLoss(den, BLANK)(*args), ctc(*args))


def test_the_phone_model_gets_a_denominator_over_phones():
    vocab = Vocabulary.for_units("phones")
    sequences = [vocab.encode("HH AH L OW"), vocab.encode("W ER L D")]
    criterion = make_criterion(TrainConfig(loss="ctc_crf"), vocab, sequences)
    den = criterion.den
    assert den.num_states == 2 * (len(vocab) - 1) + 1
    assert set(den.symbols.tolist()) == set(range(len(vocab)))
    seen = den.sequence_log_prob(torch.tensor([sequences[0]]), torch.tensor([4]))
    unseen = den.sequence_log_prob(torch.tensor([sequences[0][::-1]]), torch.tensor([4]))
    assert float(seen) > float(unseen)


@pytest.mark.parametrize(
    ("field", "value"),
    [("loss", "mmi"), ("crf_lm_order", 3), ("crf_lm_smoothing", 0.0),
     ("crf_lm_smoothing", 1e308), ("crf_ctc_weight", float("nan"))],
)  # fmt: skip
def test_bad_settings_are_refused_by_name_when_the_config_is_read(field, value):
    with pytest.raises(ConfigError, match=f"train.{field}"):
        from_dict(TrainConfig, {"loss": "ctc_crf", field: value}, "train")


def test_the_n_gram_refuses_what_it_cannot_estimate():
    with pytest.raises(ConfigError, match="orders 1 and 2"):
        denominator_from_sequences(SEQUENCES, 4, BLANK, order=3)
    with pytest.raises(ConfigError, match="positive"):
        denominator_from_sequences(SEQUENCES, 4, BLANK, smoothing=0.0)


def test_a_tiny_model_learns_with_the_ctc_crf_loss(tmp_path):
    manifest = make_tone_corpus(tmp_path / "tones", 16, seed=3)
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            f'data.train_manifest="{manifest}"',
            f'data.valid_manifest="{manifest}"',
            "data.num_workers=0",
            "data.batch_size=4",
            'model.rnn_type="gru"',
            "model.num_layers=1",
            "model.hidden_size=32",
            "model.conv_channels=4",
            "features.n_mels=40",
            "optim.epochs=4",
            "optim.lr=3e-3",
            "optim.warmup_steps=2",
            'train.device="cpu"',
            'train.precision="fp32"',
            "train.stats_utterances=4",
            "train.tensorboard=false",
            'train.loss="ctc_crf"',
        ],
    )
    fit(cfg, tmp_path / "exp")
    log = [json.loads(line) for line in (tmp_path / "exp" / "train.log").read_text().splitlines()]
    losses = [e["train_loss"] for e in log]
    assert all(loss > 0 for loss in losses)
    assert losses[-1] < 0.85 * losses[0], losses
    assert log[-1]["valid_loss"] < log[0]["valid_loss"]
