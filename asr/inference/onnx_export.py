"""The acoustic model as an ONNX graph, for the light runtime (`asr/inference/runtime_onnx.py`).

    asr export exp/x --out exp/x-ship --half --onnx --int8

`export_onnx` traces whatever `AcousticModel` the checkpoint builds (front end, recurrent
layers, output; no layer counts are assumed) with `torch.onnx.export` at opset 17 (its
TorchScript exporter, which needs only the onnx package; the torch.export one would add
onnxscript), with dynamic batch and time axes, and writes model.onnx: the same fp32
arithmetic as PyTorch (log-probs equal within 1e-4 on padded batches, tests/test_onnx.py).
With `half`, weights are stored as float16 and cast to float32 when the graph loads: half
the file, and no change to a model whose weights are already fp16 (`asr export --half`
rounds model.pt first). With `int8`, model.int8.onnx beside it: onnxruntime's dynamic
quantization (int8 weights, activations quantized per batch), a quarter of the fp32 size,
with 7-bit weights quantized per output channel (`INT8_SETTINGS`: why, below).
A latency-controlled (streaming) model's graph is its `stream_step` instead: one chunk's
window and the forward states in, the chunk's log-probs and new states out; the runtime
steps it over a whole file too (the chunk loop cannot be traced for every length).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from asr.files import file_mode
from asr.inference.runtime_onnx import (
    GRAPH_INPUTS,
    GRAPH_OUTPUTS,
    METADATA_KEY,
    STEP_INPUTS,
    STEP_OUTPUTS,
    graph_metadata,
)
from asr.inference.runtime_torch import load_torch_model
from asr.layout import INT8_FILE, ONNX_FILE

__all__ = ["INT8_FILE", "ONNX_FILE", "export_onnx"]

OPSET = 17
_DYNAMIC_AXES = {
    "feats": {0: "batch", 1: "frames"},
    "feat_lens": {0: "batch"},
    "log_probs": {0: "batch", 1: "out_frames"},
    "out_lens": {0: "batch"},
}
_MIN_HALF_SIZE = 16  # smaller initializers (shapes, scalars) stay as they are


class _LogProbGraph(nn.Module):
    """The model's inference call alone, (feats, feat_lens) -> (log_probs, out_lens), so
    that tracing sees no optional arguments."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_probs, out_lens = self.model(feats, feat_lens)[:2]
        return log_probs, out_lens


class _StepGraph(nn.Module):
    """`AcousticModel.stream_step` alone: (feats, first, last, states) -> (log_probs, states)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats, first, last, states) -> tuple[torch.Tensor, ...]:
        return self.model.stream_step(feats, first, last, states)


def export_onnx(
    checkpoint: str | Path, out_dir: str | Path, half: bool = False, int8: bool = False
) -> list[Path]:
    """Write out_dir/model.onnx (and, with `int8`, model.int8.onnx) from a checkpoint file
    or folder; each carries the config, vocabulary and statistics. Returns the files."""
    import onnx

    extractor, model, vocab = load_torch_model(checkpoint)
    config = {"features": asdict(extractor.cfg), "model": asdict(model.cfg)}
    stats = extractor.mean.tolist(), extractor.std.tolist()
    metadata = graph_metadata(config, vocab.to_list(), *stats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        traced = Path(tmp) / ONNX_FILE
        trace = _trace if model.stream_window is None else _trace_step
        trace(model, extractor.cfg.n_mels, traced)
        written = [out_dir / ONNX_FILE]
        graph = onnx.load(str(traced))
        if half:
            store_weights_half(graph)
        _save(graph, metadata, written[0])
        if int8:
            written.append(out_dir / INT8_FILE)
            _save(_quantize_int8(traced, Path(tmp)), metadata, written[1])
    return written


def _trace(model: nn.Module, n_mels: int, path: Path) -> None:
    """torch.onnx.export of the model on a padded batch of two lengths."""
    feats = torch.randn(2, 64, n_mels)  # (B, T, n_mels)
    feat_lens = torch.tensor([64, 41])
    with warnings.catch_warnings():
        # Known and harmless here: the legacy (TorchScript) exporter is deprecated in favour
        # of the torch.export one; the tracer notes that the RNN's shape checks become
        # constants; the RNN symbolic warns that batch sizes other than the traced one need
        # initial states (they default to zeros, as in PyTorch). tests/test_onnx.py runs
        # other batch sizes and lengths against PyTorch.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            _LogProbGraph(model).eval(),
            (feats, feat_lens),
            str(path),
            input_names=list(GRAPH_INPUTS),
            output_names=list(GRAPH_OUTPUTS),
            dynamic_axes=_DYNAMIC_AXES,
            opset_version=OPSET,
            dynamo=False,
        )


def _trace_step(model, n_mels: int, path: Path) -> None:
    """torch.onnx.export of one streaming step (fixed window; batch and states traced at 1)."""
    window = model.stream_window
    feats = torch.randn(1, window.frames, n_mels)  # (1, W, n_mels)
    first, last = torch.tensor([window.margin]), torch.tensor([window.frames - 5])
    states = torch.randn_like(model.initial_states(1))  # (L, S, 1, H)
    with warnings.catch_warnings():  # the same known warnings as _trace's
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            _StepGraph(model).eval(),
            (feats, first, last, states),
            str(path),
            input_names=list(STEP_INPUTS),
            output_names=list(STEP_OUTPUTS),
            opset_version=OPSET,
            dynamo=False,
        )


def export_small_graph(
    model: nn.Module, example: torch.Tensor, path: Path, axes: dict, half: bool = True
) -> None:
    """A small network (the G2P model, the punctuation tagger) traced to ONNX at `path`:
    one input and the outputs named by `axes` (name -> its dynamic axes, the input first),
    tensors of 1,024 values and more stored as float16 with `half`."""
    import onnx

    names = list(axes)
    with warnings.catch_warnings():  # the TorchScript exporter's notes on LSTM tracing
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=names[:1],
            output_names=names[1:],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    if half:
        graph = onnx.load(str(path))
        store_weights_half(graph, min_size=1024)  # large tensors only
        onnx.save(graph, str(path))


def store_weights_half(graph, min_size: int = _MIN_HALF_SIZE) -> None:
    """Float32 initializers of at least `min_size` values -> float16 storage, each cast back
    to float32 where it is read; onnxruntime folds the casts once when it loads the graph
    (the acoustic model's export and the punctuation tagger's)."""
    from onnx import TensorProto, helper, numpy_helper

    casts = []
    for tensor in graph.graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or np.prod(tensor.dims) < min_size:
            continue
        name = tensor.name
        values = numpy_helper.to_array(tensor).astype(np.float16)
        tensor.CopyFrom(numpy_helper.from_array(values, f"{name}.fp16"))
        casts.append(helper.make_node("Cast", [f"{name}.fp16"], [name], to=TensorProto.FLOAT))
    for node in reversed(casts):
        graph.graph.node.insert(0, node)


# How the int8 graph is quantized, the same on every CPU. onnxruntime multiplies u8
# activations by s8 weights; on a CPU without VNNI (AVX2, AVX-512F/BW) its kernels add pairs
# of products in 16-bit saturating arithmetic (vpmaddubsw), so 8-bit weights overflow and one
# graph is accurate on one CPU and not on another. onnxruntime's quantization guide names
# 7-bit weights (reduce_range) as the remedy for that format on those CPUs; per-channel
# scales win back most of the bit. Measured with benchmarks/int8_accuracy.py, largest
# log-prob error on the tests' tiny models (noise and the sample), 8-bit per tensor against
# this: AVX-512 VNNI 0.0013-0.0082 against 0.0022-0.0135; AVX2 only (qemu -cpu Haswell)
# 0.21-0.38 against 0.0135 or less.
INT8_SETTINGS = {"reduce_range": True, "per_channel": True}


def _quantize_int8(fp32_path: Path, tmp: Path):
    """onnxruntime's dynamic int8 quantization of a float graph, loaded back."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = tmp / INT8_FILE
    logging.disable(logging.WARNING)  # it logs every tensor it leaves in float, on the root
    try:
        quantize_dynamic(str(fp32_path), str(out), weight_type=QuantType.QInt8, **INT8_SETTINGS)
    finally:
        logging.disable(logging.NOTSET)
    return onnx.load(str(out))


def _save(graph, metadata: str, path: Path) -> None:
    """Write `graph` with its metadata entry atomically (temporary file, then rename)."""
    import onnx

    del graph.metadata_props[:]
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        onnx.save(graph, tmp_name)
        os.chmod(tmp_name, file_mode())  # mkstemp's 0600 would hide a model from users
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
