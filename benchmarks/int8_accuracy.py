"""How far an int8 graph's log-probs stray from the fp32 graph's, for each way of quantizing,
on this CPU's instruction set; the measuring half runs without torch, so that it can run
under an emulated CPU too.

    python benchmarks/int8_accuracy.py export exp/int8      # graphs + inputs (needs torch)
    python benchmarks/int8_accuracy.py measure exp/int8     # max |int8 - fp32| per variant
    qemu-x86_64 -cpu Haswell .venv/bin/python benchmarks/int8_accuracy.py measure exp/int8

Why: onnxruntime's u8 x s8 kernels on a CPU without VNNI (AVX2, AVX-512F/BW) multiply in
16-bit saturating arithmetic (vpmaddubsw), so one graph is accurate on one CPU and not on
another; onnxruntime's quantization guide names 7-bit weights (`reduce_range`) as the
remedy. `qemu-x86_64 -cpu Haswell` (Debian's qemu-user) runs the same kernels a real
AVX2-only CPU dispatches to, since onnxruntime picks them from CPUID.

Models: the five tiny random models of tests/helpers.py (every front end and cell; what
tests/test_onnx.py checks) and the bundled en-default model. Inputs: noise as the test uses,
and data/samples/sample.wav. Prints, per model and variant, the largest difference in
log-probability on real frames and whether the greedy labels agree frame by frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = {  # the last is what `asr export --int8` writes (onnx_export.INT8_SETTINGS)
    "8-bit weights, per tensor": {"reduce_range": False, "per_channel": False},
    "8-bit weights, per channel": {"reduce_range": False, "per_channel": True},
    "7-bit weights, per tensor": {"reduce_range": True, "per_channel": False},
    "7-bit weights, per channel": {"reduce_range": True, "per_channel": True},
}
TINY = [("lstm", 4), ("gru", 2), ("lstm", 8), ("gru", 1), ("lstm", 3)]  # tests/helpers.MODELS


def export(out: Path) -> None:
    """out/<model>/{model.onnx, <variant>.onnx} and out/inputs.npz."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from asr.audio import load_audio
    from asr.inference.onnx_export import export_onnx
    from asr.model_config import ModelConfig

    checkpoints = {"en-default": ROOT / "data" / "models" / "en-default" / "model.pt"}
    for rnn, factor in TINY:
        cfg = ModelConfig(
            rnn_type=rnn, num_layers=2, hidden_size=24, conv_channels=4, subsampling=factor
        )
        checkpoints[f"{rnn}-x{factor}"] = _tiny_checkpoint(out / f"{rnn}-x{factor}", cfg, torch)
    for name, checkpoint in checkpoints.items():
        folder = out / name
        fp32 = export_onnx(checkpoint, folder)[0]
        for variant, options in VARIANTS.items():
            target = folder / f"{_slug(variant)}.onnx"
            quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, **options)
        print(f"exported {name}: {folder}")
    rng = np.random.default_rng(0)
    waves = {
        "noise 1 s": (0.1 * rng.standard_normal(16_000)).astype(np.float32),
        "noise 0.5 s": (0.1 * rng.standard_normal(8_000)).astype(np.float32),
        "sample.wav": load_audio(ROOT / "data" / "samples" / "sample.wav", 16_000),
    }
    np.savez(out / "inputs.npz", **waves)
    (out / "variants.json").write_text(json.dumps(list(VARIANTS)), encoding="utf-8")


def _tiny_checkpoint(folder: Path, cfg, torch) -> Path:
    """The random model tests/helpers.tiny_checkpoint makes (same seed, same statistics)."""
    from dataclasses import asdict

    from asr.checkpoint import inference_payload, save_checkpoint
    from asr.features import FeatureConfig
    from asr.model import AcousticModel
    from asr.text import Vocabulary

    folder.mkdir(parents=True, exist_ok=True)
    vocab = Vocabulary.english()
    torch.manual_seed(0)
    model = AcousticModel(cfg, 80, len(vocab))
    mean, std = torch.randn(80) - 5.0, torch.rand(80) + 1.0
    config = {"features": asdict(FeatureConfig()), "model": asdict(cfg)}
    payload = inference_payload(config, vocab.to_list(), mean, std, model.state_dict())
    save_checkpoint(folder / "model.pt", payload)
    return folder / "model.pt"


def _slug(variant: str) -> str:
    return variant.replace(",", "").replace(" ", "_")


def measure(out: Path, only: list[str]) -> None:
    from asr.inference.runtime_onnx import OnnxRunner

    inputs = np.load(out / "inputs.npz")
    variants = json.loads((out / "variants.json").read_text(encoding="utf-8"))
    print(f"cpu: {_cpu_kind()}")
    print(f"{'model':<12} {'variant':<28} {'max |diff|':>10} {'greedy same':>12}")
    folders = sorted(p for p in out.iterdir() if (p / "model.onnx").is_file())
    for folder in [f for f in folders if not only or f.name in only]:
        reference = OnnxRunner.from_file(folder / "model.onnx")
        for variant in variants:
            runner = OnnxRunner.from_file(folder / f"{_slug(variant)}.onnx")
            worst, same, frames = 0.0, 0, 0
            for name in inputs.files:
                want, lens = reference.log_probs([inputs[name]])
                got, _ = runner.log_probs([inputs[name]])
                n = int(lens[0])
                worst = max(worst, float(np.abs(got[0, :n] - want[0, :n]).max()))
                same += int((got[0, :n].argmax(-1) == want[0, :n].argmax(-1)).sum())
                frames += n
            row = f"{folder.name:<12} {variant:<28} {worst:>10.4f} {same / frames:>11.1%}"
            print(row, flush=True)


def _cpu_kind() -> str:
    """The instruction sets onnxruntime's int8 kernels choose between, as CPUID reports them
    (/proc/cpuinfo shows the host's under qemu, so ask numpy, which reads CPUID itself)."""
    from numpy._core._multiarray_umath import __cpu_features__ as features

    names = ("AVX2", "AVX512F", "AVX512BW", "AVX512_VNNI", "AVX512VNNI", "AVXVNNI")
    kinds = [k for k in names if features.get(k)]
    return " ".join(kinds) or "no AVX2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["export", "measure"])
    parser.add_argument("out", type=Path, help="folder for the graphs and inputs")
    parser.add_argument(
        "--models", nargs="*", default=[], help="measure: only these (default: all)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    export(args.out) if args.step == "export" else measure(args.out, args.models)


if __name__ == "__main__":
    main()
