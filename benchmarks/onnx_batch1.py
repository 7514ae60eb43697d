"""One file at a time: the PyTorch runtime against onnxruntime under several session
settings, and the numpy features alone, on the first --files dev files (x real time).

    python benchmarks/onnx_batch1.py --model data/models/en-default --files 12

Each variant runs the same waveforms after one warm-up file. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from asr.audio import load_audio
from asr.manifest import read_manifest

SESSIONS = {  # name -> (execution mode, inter-op threads, intra-op threads)
    "onnx parallel, inter 2, intra 1": ("parallel", 2, 1),
    "onnx parallel, inter 2, intra 2": ("parallel", 2, 2),
    "onnx sequential, intra 1": ("sequential", 1, 1),
}


def rate(runner, waves: list[np.ndarray], audio: float) -> float:
    runner.log_probs([waves[0]])
    start = time.perf_counter()
    for wave in waves:
        runner.log_probs([wave])
    return audio / (time.perf_counter() - start)


def session(graph: str, mode: str, inter: int, intra: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    parallel = ort.ExecutionMode.ORT_PARALLEL
    options.execution_mode = parallel if mode == "parallel" else ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads, options.intra_op_num_threads = inter, intra
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="data/models/en-default", help="model folder")
    p.add_argument("--manifest", default="data/manifests/mini/dev.jsonl", help="audio files")
    p.add_argument("--files", type=int, default=12, help="files to run")
    args = p.parse_args()
    import torch

    from asr.inference.runtime_onnx import OnnxRunner
    from asr.inference.runtime_torch import TorchRunner

    paths = [u.audio_filepath for u in read_manifest(args.manifest)][: args.files]
    waves = [load_audio(path) for path in paths]
    audio = sum(len(w) for w in waves) / 16_000
    torch.set_num_threads(2)
    print(f"torch: {rate(TorchRunner.from_checkpoint(args.model, 'cpu'), waves, audio):.1f}x")
    base = OnnxRunner.from_file(f"{args.model}/model.onnx")
    print(f"onnx, onnxruntime's defaults: {rate(base, waves, audio):.1f}x")
    for name, settings in SESSIONS.items():
        graph = session(f"{args.model}/model.onnx", *settings)
        runner = OnnxRunner(graph, base.extractor, base.vocab, base.subsampling)
        print(f"{name}: {rate(runner, waves, audio):.1f}x")
    start = time.perf_counter()
    for wave in waves:
        base.extractor(wave[None].astype(np.float32), np.array([len(wave)]))
    print(f"numpy features alone: {audio / (time.perf_counter() - start):.1f}x")


if __name__ == "__main__":
    main()
