"""The loss table: every kind train.loss can name builds a criterion with one call, which
compute_loss uses as it is, a phone head beside it or not."""

import pytest
import torch

from asr.model import AcousticModel, ModelConfig
from asr.pronounce import PHONE_TOKENS
from asr.text import Vocabulary
from asr.training.config import TrainConfig
from asr.training.data import Batch
from asr.training.losses import LOSSES, PHONE_CTC, compute_loss, make_criterion

VOCAB = Vocabulary.english()
SEQUENCES = [VOCAB.encode("a cat"), VOCAB.encode("the dog"), VOCAB.encode("at")]


class Normalized(torch.nn.Module):
    """Cached raw frames pass through normalization unchanged."""

    def normalize(self, feats, feat_lens):
        return feats, feat_lens


def _batch(with_aux: bool) -> Batch:
    targets = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in SEQUENCES], True)
    aux = (torch.tensor([[1, 2], [3, 4], [5, 0]]), torch.tensor([2, 2, 1])) if with_aux else ()
    feats = torch.randn(3, 40, 40, generator=torch.Generator().manual_seed(1))  # (B, T, F)
    lens = torch.tensor([40, 36, 30])
    return Batch(feats, lens, targets, torch.tensor([len(s) for s in SEQUENCES]), *aux)


def test_the_config_accepts_exactly_the_kinds_of_the_table():
    for kind in LOSSES:
        assert TrainConfig(loss=kind).loss == kind
    with pytest.raises(ValueError, match="train.loss"):
        TrainConfig(loss="mmi")


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_every_kind_has_the_summed_ctc_call(kind):
    criterion = make_criterion(TrainConfig(loss=kind), VOCAB, SEQUENCES)
    torch.manual_seed(0)
    log_probs = torch.randn(30, 3, len(VOCAB)).log_softmax(-1)  # (T, B, V)
    targets = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in SEQUENCES], True)
    target_lens = torch.tensor([len(s) for s in SEQUENCES])
    out_lens = torch.tensor([30, 25, 20])
    summed = criterion(log_probs, targets, out_lens, target_lens)
    each = [
        criterion(
            log_probs[:, i : i + 1], targets[i : i + 1], out_lens[i : i + 1], target_lens[i : i + 1]
        )
        for i in range(3)
    ]
    assert summed.shape == () and torch.isfinite(summed) and float(summed) > 0
    torch.testing.assert_close(summed, sum(each))  # summed over the batch, item by item


@pytest.mark.parametrize("kind", sorted(LOSSES))
@pytest.mark.parametrize("with_aux", [False, True])
def test_compute_loss_takes_every_kind_and_the_phone_head_learns_by_ctc(kind, with_aux):
    torch.manual_seed(0)
    cfg = ModelConfig(num_layers=2, hidden_size=8, conv_channels=4, aux_layer=1, dropout=0.0)
    model = AcousticModel(cfg, 40, len(VOCAB), aux_vocab_size=len(PHONE_TOKENS)).eval()
    criterion = make_criterion(TrainConfig(loss=kind), VOCAB, SEQUENCES)
    args = (model, Normalized(), _batch(with_aux), criterion, torch.device("cpu"), torch.float32)
    alone, mixed = compute_loss(*args), compute_loss(*args, aux_weight=0.5)
    assert alone.utterances == 3 and torch.isfinite(alone.loss)
    if not with_aux:  # no phone targets: the weight has nothing to weigh
        torch.testing.assert_close(mixed.loss, alone.loss)
        return
    batch = _batch(True)
    _, out_lens, aux_log_probs = model(batch.inputs, batch.input_lens, with_aux=True)
    phone = PHONE_CTC(
        aux_log_probs.transpose(0, 1), batch.aux_targets, out_lens, batch.aux_target_lens
    )
    torch.testing.assert_close(mixed.loss, 0.5 * alone.loss + 0.5 * phone / 3)


def test_a_new_kind_is_one_table_entry(monkeypatch):
    """An entry in LOSSES is a train.loss value the config accepts and make_criterion builds,
    with no other file touched."""
    built = []

    def doubled(train, vocab, sequences):
        built.append(list(sequences))
        ctc = LOSSES["ctc"](train, vocab, sequences)
        return lambda *args: 2 * ctc(*args)

    monkeypatch.setitem(LOSSES, "doubled", doubled)
    criterion = make_criterion(TrainConfig(loss="doubled"), VOCAB, SEQUENCES)
    assert built == [SEQUENCES] and callable(criterion)
