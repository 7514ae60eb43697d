"""Hierarchical multitask CTC: a phone head on an intermediate layer, characters on top."""

import pytest
import torch

from asr.config import apply_overrides
from asr.corpora.tones import make_tone_corpus
from asr.inference.export import export_model
from asr.inference.recognizer import Recognizer
from asr.model import AcousticModel, ModelConfig, drop_aux_head
from asr.pronounce import PHONE_TOKENS
from asr.training.data import Batch
from asr.training.loop import ExperimentConfig, compute_loss, fit


def test_aux_head_reads_its_layer_and_only_when_asked():
    torch.manual_seed(0)
    cfg = ModelConfig(num_layers=2, hidden_size=8, conv_channels=4, aux_layer=1)
    model = AcousticModel(cfg, 40, 29, aux_vocab_size=len(PHONE_TOKENS)).eval()
    feats, lens = torch.randn(2, 30, 40), torch.tensor([30, 21])
    log_probs, out_lens = model(feats, lens)
    with_aux = model(feats, lens, with_aux=True)
    assert len(with_aux) == 3
    torch.testing.assert_close(with_aux[0], log_probs)
    assert with_aux[2].shape == (2, log_probs.shape[1], len(PHONE_TOKENS))
    torch.testing.assert_close(with_aux[2].exp().sum(-1), torch.ones(2, log_probs.shape[1]))


@pytest.mark.parametrize("bad", [2, 3, -1])
def test_aux_layer_must_be_below_the_top(bad):
    with pytest.raises(ValueError, match="aux_layer"):
        ModelConfig(num_layers=2, aux_layer=bad)


def test_aux_loss_falls_on_a_toy_set():
    """Fixed random features whose phone targets are learnable: the combined loss and the
    phone head's own loss fall together over a few dozen steps."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        rnn_type="gru", num_layers=2, hidden_size=16, conv_channels=4, subsampling=2,
        dropout=0.0, aux_layer=1,
    )  # fmt: skip
    model = AcousticModel(cfg, 40, 29, aux_vocab_size=len(PHONE_TOKENS))

    class Identity(torch.nn.Module):
        """Cached raw frames pass through normalization unchanged."""

        def normalize(self, feats, feat_lens):
            return feats, feat_lens

    feats = torch.randn(4, 40, 40)  # (B, T, F) cached frames, already normal
    batch = Batch(
        feats,
        torch.tensor([40, 40, 36, 30]),
        torch.tensor([[3, 4, 5], [6, 7, 0], [3, 3, 0], [8, 0, 0]]),
        torch.tensor([3, 2, 2, 1]),
        torch.tensor([[1, 2], [5, 6], [9, 0], [12, 13]]),
        torch.tensor([2, 2, 1, 2]),
    )
    ctc = torch.nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    def losses():
        args = (model, Identity(), batch, ctc, torch.device("cpu"), torch.float32)
        combined = compute_loss(*args, aux_weight=0.5)
        main = compute_loss(*args, aux_weight=0.0)
        phone = 2 * combined.loss.detach() - main.loss.detach()  # 0.5 * main + 0.5 * phone
        return combined, float(phone)

    model.train()
    start, start_phone = losses()
    for _ in range(60):
        optimizer.zero_grad()
        losses()[0].loss.backward()
        optimizer.step()
    end, end_phone = losses()
    assert float(end.loss.detach()) < 0.5 * float(start.loss.detach())
    assert end_phone < 0.5 * start_phone


def test_training_with_a_phone_head_exports_and_transcribes_without_it(tmp_path):
    manifest = make_tone_corpus(tmp_path / "tones", 12, seed=5)
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            f'data.train_manifest="{manifest}"',
            "data.num_workers=0",
            "data.batch_size=4",
            "model.num_layers=2",
            "model.hidden_size=16",
            "model.conv_channels=4",
            "model.aux_layer=1",
            "features.n_mels=40",
            "optim.epochs=1",
            "optim.warmup_steps=2",
            'train.device="cpu"',
            'train.precision="fp32"',
            "train.stats_utterances=4",
            "train.tensorboard=false",
            "train.aux_weight=0.3",
        ],
    )
    trainer = fit(cfg, tmp_path / "exp")
    assert trainer.raw_model.aux_output is not None
    assert any(k.startswith("aux_output.") for k in trainer.raw_model.state_dict())
    model_file = export_model(tmp_path / "exp" / "model.pt", tmp_path / "folder")
    from asr.checkpoint import load_checkpoint

    record = load_checkpoint(model_file)
    assert record["config"]["model"]["aux_layer"] == 0
    assert not any(k.startswith("aux_output.") for k in record["model"])
    audio = sorted((tmp_path / "tones" / "wav").iterdir())[:3]
    texts = []
    for source in (tmp_path / "exp" / "model.pt", model_file):  # with and without the head
        recognizer = Recognizer.from_checkpoint(source, device="cpu")
        texts.append([r.text for r in recognizer.transcribe(audio)])
    assert texts[0] == texts[1]  # the head changes nothing the model says


def test_drop_aux_head_keeps_everything_else():
    config, state = drop_aux_head(
        {"aux_layer": 2, "num_layers": 3}, {"aux_output.weight": 1, "output.weight": 2}
    )
    assert config == {"aux_layer": 0, "num_layers": 3} and state == {"output.weight": 2}
