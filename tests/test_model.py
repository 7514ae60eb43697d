import pytest
import torch

from asr.model import AcousticModel, ModelConfig


@pytest.mark.parametrize(
    ("rnn_type", "subsampling"),
    [("lstm", 4), ("gru", 4), ("lstm", 2), ("lstm", 3), ("gru", 8), ("lstm", 1)],
)
def test_padded_batch_equals_item_by_item(rnn_type, subsampling):
    torch.manual_seed(0)
    cfg = ModelConfig(rnn_type=rnn_type, num_layers=2, hidden_size=32, subsampling=subsampling)
    model = AcousticModel(cfg, n_mels=80, vocab_size=29).eval()
    lens = torch.tensor([97, 40, 63])
    feats = torch.randn(3, 97, 80)
    for i, n in enumerate(lens):
        feats[i, n:] = 0.0  # the feature extractor zeroes padding
    with torch.no_grad():
        log_probs, out_lens = model(feats, lens)
        for i, n in enumerate(lens):
            alone, alone_lens = model(feats[i : i + 1, :n], lens[i : i + 1])
            m = int(alone_lens[0])
            assert int(out_lens[i]) == m == alone.shape[1]
            torch.testing.assert_close(log_probs[i, :m], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("subsampling", "frames", "expected"),
    [(4, 1000, 250), (4, 101, 26), (2, 7, 4), (8, 1000, 125), (1, 33, 33), (3, 1000, 334)]
    + [(3, 101, 34), (3, 3, 1), (3, 4, 2)],
)
def test_output_lengths(subsampling, frames, expected):
    model = AcousticModel(ModelConfig(subsampling=subsampling, hidden_size=16), 80, 29)
    lens = torch.tensor([frames])
    assert int(model.output_lengths(lens)[0]) == expected
    log_probs, out_lens = model(torch.zeros(1, frames, 80), lens)
    assert log_probs.shape == (1, expected, 29) and int(out_lens[0]) == expected


def test_outputs_are_log_probabilities():
    model = AcousticModel(ModelConfig(hidden_size=16, num_layers=1), 80, 29)
    log_probs, _ = model(torch.randn(2, 50, 80), torch.tensor([50, 50]))
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 13))


def test_reference_model_size():
    model = AcousticModel(ModelConfig(), 80, 29)  # 3 x 320 BiLSTM, x4 subsampling
    assert 6e6 < sum(p.numel() for p in model.parameters()) < 8e6


@pytest.mark.parametrize("field", [{"rnn_type": "transformer"}, {"subsampling": 5}])
def test_rejects_bad_config(field):
    with pytest.raises(ValueError):
        ModelConfig(**field)


def test_x3_front_end_keeps_every_ctc_feasible_transcript_trainable():
    """At x3 (30 ms frames) an utterance's output frames, from the model itself, are what
    the data check and the CTC feasibility rule assume: a transcript fits exactly when
    ctc_min_frames(target) <= output frames."""
    from asr.corpora.check import CheckConfig, output_frames
    from asr.frames import ctc_min_frames
    from asr.training.losses import ctc_feasible

    model = AcousticModel(ModelConfig(subsampling=3, num_layers=1, hidden_size=8), 80, 29)
    for seconds in (0.25, 1.0, 2.37):
        frames = int(round(seconds * 100)) + 1  # centered STFT, 10 ms hop
        _, out_lens = model(torch.zeros(1, frames, 80), torch.tensor([frames]))
        n = int(out_lens[0])
        assert n == output_frames(seconds, CheckConfig(subsampling=3)) == -(-frames // 3)
        for target in ([1] * (n // 2), [1, 2] * (n // 2) + [3], [5] * (n // 2 + 1)):
            ids = torch.tensor([target])
            fits = ctc_feasible(out_lens, ids, torch.tensor([len(target)]))
            assert bool(fits[0]) == (ctc_min_frames(target) <= n)


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_the_config_record_says_what_a_stream_step_reads_and_carries(rnn_type):
    """ModelConfig's stream window and state shape are those of the network it rebuilds:
    a step over a window of that many frames, with states of that shape, returns a chunk
    and states of the same shape (what the ONNX runtime allocates from the config alone)."""
    cfg = ModelConfig(
        encoder="lc_birnn", rnn_type=rnn_type, num_layers=2, hidden_size=8, conv_channels=4,
        subsampling=4, chunk_frames=5, right_frames=3,
    )  # fmt: skip
    model = AcousticModel(cfg, 40, 29).eval()
    window = cfg.stream_window
    assert window == model.stream_window and window.chunk == 5 and window.right == 3
    assert cfg.state_shape(3) == (2, 2 if rnn_type == "lstm" else 1, 3, 8)
    feats = torch.randn(1, window.frames, 40)
    states = torch.randn(cfg.state_shape(1))
    ends = torch.tensor([0]), torch.tensor([window.frames])
    log_probs, new_states = model.stream_step(feats, *ends, states)
    assert log_probs.shape == (1, 5, 29) and new_states.shape == states.shape
    assert ModelConfig(hidden_size=8).stream_window is None  # "birnn" cannot stream


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_both_runtimes_read_the_geometry_from_the_config(tmp_path, rnn_type):
    """The ONNX runtime rebuilds no network: its window and states come from the same
    ModelConfig record as the torch model's, and its steps equal the torch steps."""
    pytest.importorskip("onnxruntime")
    import numpy as np
    from helpers import tiny_checkpoint

    from asr.inference.onnx_export import export_onnx
    from asr.inference.runtime_onnx import OnnxRunner
    from asr.inference.runtime_torch import TorchRunner

    cfg = ModelConfig(
        encoder="lc_birnn", rnn_type=rnn_type, num_layers=2, hidden_size=8, conv_channels=4,
        chunk_frames=4, right_frames=2,
    )  # fmt: skip
    checkpoint = tiny_checkpoint(tmp_path, cfg)
    (graph,) = export_onnx(checkpoint, tmp_path / "onnx")
    onnx_runner, torch_runner = (
        OnnxRunner.from_file(graph),
        TorchRunner.from_checkpoint(checkpoint, "cpu"),
    )
    window = cfg.stream_window
    assert onnx_runner.stream_window == torch_runner.stream_window == window
    assert onnx_runner.initial_states().shape == cfg.state_shape(1)
    assert torch_runner.initial_states().shape == cfg.state_shape(1)
    rng = np.random.default_rng(0)
    states = rng.normal(0, 0.5, cfg.state_shape(1)).astype(np.float32)
    feats = rng.normal(0, 1, (1, window.frames, 80)).astype(np.float32)
    a, sa = torch_runner.stream_step(feats, 0, window.frames, states)
    b, sb = onnx_runner.stream_step(feats, 0, window.frames, states)
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(sa, sb, atol=1e-4)


def test_utterance_summary_starts_at_zero_and_ignores_padding():
    """Issue 32, direction 3: a model with summary_layer equals its donor before training
    (the projection starts at zero); trained weights make it differ, and a padded batch
    still equals item-by-item (the mean and std count each utterance's own frames)."""
    torch.manual_seed(0)
    base = ModelConfig(num_layers=2, hidden_size=32, subsampling=3)
    donor = AcousticModel(base, n_mels=80, vocab_size=29).eval()
    model = AcousticModel(ModelConfig(**{**vars(base), "summary_layer": 1}), 80, 29).eval()
    missing = model.load_state_dict(donor.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["rnn.summary.proj.bias", "rnn.summary.proj.weight"]
    lens = torch.tensor([90, 41])
    feats = torch.randn(2, 90, 80)
    feats[1, 41:] = 0.0
    with torch.no_grad():
        torch.testing.assert_close(model(feats, lens)[0], donor(feats, lens)[0])
        torch.nn.init.normal_(model.rnn.summary.proj.weight, std=0.1)
        batch, out_lens = model(feats, lens)
        assert not torch.allclose(batch, donor(feats, lens)[0], atol=1e-3)
        for i, n in enumerate(lens):
            alone, _ = model(feats[i : i + 1, :n], lens[i : i + 1])
            m = int(out_lens[i])
            torch.testing.assert_close(batch[i, :m], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "field",
    [
        {"summary_layer": 2},  # the last layer: nothing above it to read it
        {"summary_layer": -1},
        {"summary_layer": 1, "encoder": "lc_birnn", "chunk_frames": 20},  # a stream
    ],
)
def test_summary_layer_refused_where_it_cannot_work(field):
    with pytest.raises(ValueError, match="summary_layer"):
        ModelConfig(num_layers=2, **field)
