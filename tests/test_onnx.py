"""ONNX export and the light runtime: the graph equals PyTorch on padded batches of any front
end, describes itself, is chosen by one rule, and transcribes as the PyTorch path does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import MODELS, VOCAB, tiny_checkpoint

from asr.audio import load_audio
from asr.checkpoint import CheckpointError
from asr.corpora.tones import ToneConfig, render_tones
from asr.decode import DecodingOptions
from asr.inference.onnx_export import INT8_FILE, ONNX_FILE, export_onnx
from asr.inference.recognizer import DEFAULT_MODEL, load_model, resolve_runtime
from asr.inference.runtime_onnx import OnnxRunner
from asr.inference.runtime_torch import TorchRunner, load_torch_model
from asr.model import ModelConfig

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "sample.wav"
# Measured: at most 9e-6 on these tiny models (graph alone); 3e-5 for the bundled model
# on its sample, waveform to log-probs (numpy features included), and up to 1.1e-4 on the
# tones (outside its training domain; log-probs of magnitude 11-18, so 1e-5 relative).
TOLERANCE = 1e-4
BUNDLED_TOLERANCE = 2e-4


def test_the_models_cover_every_front_end_and_cell():
    from asr.frames import SUBSAMPLING_FACTORS
    from asr.model_config import RNN_CELLS

    assert {m.subsampling for m in MODELS} == set(SUBSAMPLING_FACTORS)
    assert {m.rnn_type for m in MODELS} == set(RNN_CELLS)


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, 80) features, zero past each length, and (B,) lengths."""
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((len(lengths), max(lengths), 80)).astype(np.float32)
    for b, n in enumerate(lengths):
        feats[b, n:] = 0.0
    return feats, np.array(lengths, dtype=np.int64)


def max_diff_on_real_frames(a: np.ndarray, b: np.ndarray, lens: np.ndarray) -> float:
    mask = np.arange(a.shape[1])[None, :] < lens[:, None]  # (B, T')
    return float(np.abs(a - b)[mask].max())


@pytest.fixture(scope="module", params=MODELS, ids=lambda c: f"{c.rnn_type}-x{c.subsampling}")
def exported(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_checkpoint(folder, request.param)
    export_onnx(folder / "model.pt", folder, int8=True)
    return folder


@pytest.mark.parametrize("lengths", [[100], [37, 100, 64], [5, 81, 33, 250, 18]])
def test_graph_equals_pytorch_on_padded_batches(exported, lengths):
    """Batch sizes and lengths other than the traced (2 x 64) one, padding included."""
    _, model, _ = load_torch_model(exported)
    graph = OnnxRunner.from_file(exported / ONNX_FILE)
    feats, feat_lens = padded_batch(lengths)
    with torch.no_grad():
        expected, expected_lens = model(torch.from_numpy(feats), torch.from_numpy(feat_lens))
    got, got_lens = graph.session.run(None, {"feats": feats, "feat_lens": feat_lens})
    assert np.array_equal(got_lens, expected_lens.numpy())
    assert max_diff_on_real_frames(got, expected.numpy(), got_lens) <= TOLERANCE


def test_runners_agree_from_waveforms(exported, noise):
    """numpy features + graph against FeatureExtractor + model, on one padded batch."""
    waves = [noise(s, seed=i) for i, s in enumerate([1.0, 0.31, 1.77])]
    onnx = OnnxRunner.from_file(exported / ONNX_FILE)
    pytorch = TorchRunner.from_checkpoint(exported, "cpu")
    got, got_lens = onnx.log_probs(waves)
    expected, expected_lens = pytorch.log_probs(waves)
    assert np.array_equal(got_lens, expected_lens)
    assert max_diff_on_real_frames(got, expected, got_lens) <= TOLERANCE
    assert onnx.frame_seconds == pytorch.frame_seconds
    assert onnx.vocab.tokens == VOCAB.tokens


def test_int8_graph_quantizes_the_weights_and_stays_close(exported, noise):
    import onnx

    graph = onnx.load(str(exported / INT8_FILE)).graph
    ops = {node.op_type for node in graph.node}
    assert {"DynamicQuantizeLSTM", "MatMulInteger"} & ops  # the recurrent or linear weights
    weights = [
        onnx.numpy_helper.to_array(t)
        for t in graph.initializer
        if t.data_type == onnx.TensorProto.INT8
    ]
    # 7-bit symmetric weights (|w| <= 64): no pair of u8 x s8 products overflows 16 bits
    assert weights and max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64
    waves = [noise(1.0), noise(0.5, seed=1)]
    got, lens = OnnxRunner.from_file(exported / INT8_FILE).log_probs(waves)
    expected, _ = OnnxRunner.from_file(exported / ONNX_FILE).log_probs(waves)
    # 7-bit weights per channel (onnx_export.INT8_SETTINGS), `python benchmarks/int8_accuracy.py`
    # on these five models (noise and the sample): at most 0.0135 on an AVX-512 VNNI Xeon and
    # the same figures, to the digit, under `qemu-x86_64 -cpu Haswell` (AVX2 only: no
    # saturation left, so the integer sums are exact on both). 8-bit weights gave 0.21-0.38
    # there (issue 31: 0.057-0.14 on an AVX2 EPYC) and 0.008 here.
    assert max_diff_on_real_frames(got, expected, lens) < 0.03


def test_half_storage_halves_the_file_and_changes_no_fp16_weight(tmp_path):
    cfg = ModelConfig(num_layers=2, hidden_size=64, conv_channels=8)
    tiny_checkpoint(tmp_path, cfg, half=True)  # as `asr export --half` writes model.pt
    full = export_onnx(tmp_path / "model.pt", tmp_path / "fp32")[0]
    half = export_onnx(tmp_path / "model.pt", tmp_path / "fp16", half=True)[0]
    assert half.stat().st_size < 0.6 * full.stat().st_size
    feats, feat_lens = padded_batch([90, 40])
    inputs = {"feats": feats, "feat_lens": feat_lens}
    a, _ = OnnxRunner.from_file(full).session.run(None, inputs)
    b, _ = OnnxRunner.from_file(half).session.run(None, inputs)
    assert np.abs(a - b).max() <= 1e-6


def test_cli_export_writes_the_graphs_beside_model_pt(tmp_path):
    from asr.cli import main

    tiny_checkpoint(tmp_path / "exp", MODELS[0])
    out = tmp_path / "ship"
    assert main(["export", str(tmp_path / "exp"), "--out", str(out), "--half", "--int8"]) == 0
    assert {p.name for p in out.iterdir()} == {"model.pt", ONNX_FILE, INT8_FILE}
    assert type(load_model(out).runner) is OnnxRunner
    assert type(load_model(out, runtime="torch").runner) is TorchRunner


def test_a_file_that_is_not_a_graph_is_a_checkpoint_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x00not a graph" * 20)
    with pytest.raises(CheckpointError, match="model.onnx: not a loadable ONNX graph"):
        OnnxRunner.from_file(bad)


# --- which runtime -----------------------------------------------------------------------

RUNTIME_CASES = [
    # files in the folder, path (relative to it), runtime, device, expected
    (["model.pt"], ".", "auto", "auto", "torch"),
    (["model.pt", "model.onnx"], ".", "auto", "auto", "onnx"),
    (["model.pt", "model.int8.onnx"], ".", "auto", "cpu", "onnx"),
    (["model.pt", "model.onnx"], ".", "torch", "auto", "torch"),
    (["model.pt", "model.onnx"], ".", "auto", "cuda", "torch"),  # onnx here is CPU-only
    (["model.pt", "model.onnx"], "model.pt", "auto", "auto", "torch"),  # that very file
    (["model.onnx"], "model.onnx", "auto", "auto", "onnx"),
    (["model.pt"], ".", "onnx", "auto", "no ONNX graph"),
    (["model.onnx"], "model.onnx", "torch", "auto", "runs on the onnx runtime"),
]


@pytest.mark.parametrize(("files", "path", "runtime", "device", "expected"), RUNTIME_CASES)
def test_resolve_runtime(tmp_path, files, path, runtime, device, expected):
    for name in files:
        (tmp_path / name).write_bytes(b"")
    if expected in ("torch", "onnx"):
        assert resolve_runtime(tmp_path / path, runtime, device) == expected
    else:
        with pytest.raises(CheckpointError, match=expected):
            resolve_runtime(tmp_path / path, runtime, device)


def test_an_unknown_runtime_is_refused(tmp_path):
    with pytest.raises(ValueError, match="runtime must be one of"):
        resolve_runtime(tmp_path, "tensorflow")


# --- the bundled model: both runtimes, the same transcripts ------------------------------


@pytest.fixture(scope="module")
def bundled():
    return load_model(runtime="onnx"), load_model(device="cpu", runtime="torch")


def _tone_waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    texts = ["a cab", "be bad", "dead bee face", "fed a cad"]
    return [render_tones(text, rng, ToneConfig()) for text in texts]


def test_bundled_model_ships_its_graph_and_loads_it_by_default(bundled):
    onnx, _ = bundled
    assert (DEFAULT_MODEL / ONNX_FILE).is_file()
    assert type(load_model().runner) is OnnxRunner
    assert onnx.default_options.decoder == "beam"  # decoding.json applies to both


def test_bundled_log_probs_equal_on_the_sample_and_tones(bundled):
    onnx, pytorch = bundled
    waves = [load_audio(SAMPLE), *_tone_waves()]
    got, lens = onnx.log_probs(waves)
    expected, expected_lens = pytorch.log_probs(waves)
    assert np.array_equal(lens, expected_lens)
    assert max_diff_on_real_frames(got, expected, lens) <= BUNDLED_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_bundled_transcripts_are_the_same_on_both_runtimes(bundled, decoder):
    """The sample and tone-corpus utterances, greedy and with the bundled 4-gram LM."""
    onnx, pytorch = bundled
    options = onnx.default_options if decoder == "beam" else DecodingOptions()
    inputs = [SAMPLE, *_tone_waves()]
    got = [t.text for t in onnx.transcribe(inputs, options, word_timestamps=True)]
    expected = [t.text for t in pytorch.transcribe(inputs, options, word_timestamps=True)]
    assert got == expected
    assert got[0]  # the sample is speech: something was recognized


def test_a_graph_that_disagrees_with_its_vocabulary_or_is_not_finite_is_refused(tmp_path):
    import json

    import onnx

    from asr.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from asr.inference.runtime_onnx import METADATA_KEY

    tiny_checkpoint(tmp_path, MODELS[0])
    export_onnx(tmp_path / "model.pt", tmp_path / "good")
    graph = onnx.load(str(tmp_path / "good" / ONNX_FILE))
    for prop in graph.metadata_props:
        if prop.key == METADATA_KEY:
            record = json.loads(prop.value)
            record["vocab"] = record["vocab"][:-1]  # one token fewer than the output's width
            prop.value = json.dumps(record)
    onnx.save(graph, str(tmp_path / "narrow.onnx"))
    with pytest.raises(CheckpointError, match=r"narrow.onnx: the graph's output has shape"):
        OnnxRunner.from_file(tmp_path / "narrow.onnx")
    record = load_checkpoint(tmp_path / "model.pt")
    weights = dict(record["model"])
    key = next(k for k in weights if k.startswith("output.") and k.endswith("bias"))
    weights[key] = torch.full_like(weights[key], float("nan"))
    save_checkpoint(tmp_path / "nan" / "model.pt", {**record, "model": weights})
    export_onnx(tmp_path / "nan" / "model.pt", tmp_path / "nan")
    with pytest.raises(CheckpointError, match="log-probs are not finite"):
        OnnxRunner.from_file(tmp_path / "nan" / ONNX_FILE)
