"""Light inference (onnxruntime, no torch) against the PyTorch path and pocketsphinx, side by side.

    python benchmarks/light_inference.py --json exp/light_inference.json    # the full run
    python benchmarks/light_inference.py --limit 3 --repeats 1              # a smoke test

Cold start: a fresh process, started from the shell, transcribes one utterance of about 16 s
(the manifest's closest to --seconds): `asr transcribe FILE --runtime torch|onnx`, greedy
and with the model folder's LM (its decoding.json), and pocketsphinx (its en-us model, LM
and dictionary; benchmarks/pocketsphinx_runner.py on a one-line manifest, in the
.venv-pocketsphinx environment that benchmarks/compare_pocketsphinx.py makes). Wall time
from start to exit and the process's peak memory (ru_maxrss from os.wait4), the median of
--repeats runs, the systems interleaved. Targets (issue 19): the light install with the
LM in at most 0.35x pocketsphinx's wall time and 1.5x its peak memory.

Throughput: each variant in its own process over the manifest (--limit files), after a
warm-up: transcription (read, features, model, greedy decoding) one file at a time and in
batches of --batch-size, as x real time (--threads for torch and onnxruntime alike); WER
greedy and with the LM. Variants: torch fp32 (model.pt), onnx (model.onnx: fp32
arithmetic) and onnx int8 (model.int8.onnx, exported here into a temporary folder beside
the model's LM). Targets: ONNX at least as fast as torch, WER within 0.2 points of it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from compare_pocketsphinx import pocketsphinx_python  # noqa: E402

WALL_TARGET, PEAK_TARGET = 0.35, 1.5  # cold start against pocketsphinx (issue 19)
VARIANTS = {  # name -> (runtime, file in the model folder; None: the folder itself)
    "torch fp32": ("torch", None),
    "onnx": ("onnx", "model.onnx"),
    "onnx int8": ("onnx", "model.int8.onnx"),
}


# Starts the measured command, times it and reports its peak memory. A child's ru_maxrss
# starts from the memory of the process that forked it, so the fork happens in this small
# interpreter (about 10 MiB), not in the benchmark's own process (which holds torch).
_LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(f"{time.perf_counter() - start} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Run `command` to its end: (wall seconds, peak memory MiB of the process, stdout)."""
    with tempfile.TemporaryDirectory() as tmp:
        measured = Path(tmp) / "measured"  # "wall_seconds peak_kib"
        launch = [sys.executable, "-c", _LAUNCHER, str(measured), *command]
        done = subprocess.run(launch, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        wall, peak_kib = measured.read_text().split()
        return float(wall), int(peak_kib) / 1024, done.stdout


def light_venv(env: Path) -> Path:
    """The `asr` of a light install (`pip install -e .` from the lock, no torch; editable,
    so that it runs this tree's code), made once when missing: what a new user's first
    transcript runs."""
    asr = env / "bin" / "asr"
    if not asr.exists():
        print(f"creating {env}: pip install . (requirements.lock)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "-c", "requirements.lock"]
        subprocess.run([*pip, "setuptools"], check=True, cwd=ROOT)
        subprocess.run([*pip, "--no-build-isolation", "-e", "."], check=True, cwd=ROOT)
    return asr


def cold_start_commands(
    audio: Path, manifest: Path, model: Path, ps_python: Path, light: Path
) -> dict:
    """The shell commands of the cold-start rows, by (system, decoding)."""
    asr = [sys.executable, "-m", "asr", "transcribe", str(audio), "--model", str(model)]
    commands = {
        ("light install", "LM"): [str(light), "transcribe", str(audio), "--model", str(model)]
    }
    for runtime in ("torch", "onnx"):
        base = [*asr, "--runtime", runtime, "--device", "cpu"]
        commands[(runtime, "greedy")] = [*base, "--decoder", "greedy"]
        commands[(runtime, "LM")] = base  # the folder's decoding.json: beam + 4-gram LM
    runner = HERE / "pocketsphinx_runner.py"
    commands[("pocketsphinx", "LM")] = [str(ps_python), str(runner), str(manifest)]
    return commands


def cold_start(commands: dict, repeats: int) -> dict:
    """Median wall time and peak memory per command, the commands interleaved."""
    runs: dict = {key: [] for key in commands}
    for _ in range(repeats):
        for key, command in commands.items():
            wall, peak, _ = run_measured(command)
            runs[key].append((wall, peak))
    return {
        key: {
            "wall_s": statistics.median(w for w, _ in values),
            "peak_mib": statistics.median(p for _, p in values),
        }
        for key, values in runs.items()
    }


def load_variant(model: str, runtime: str, threads: int):
    """load_model(model, "cpu", runtime), with `threads` for torch or onnxruntime."""
    from asr.inference.model_folder import resolve_decoding
    from asr.inference.recognizer import Recognizer, onnx_graph

    options = resolve_decoding(model)
    if runtime == "onnx":
        from asr.inference.runtime_onnx import OnnxRunner

        return Recognizer(OnnxRunner.from_file(onnx_graph(model), threads), model, options)
    import torch

    from asr.inference.runtime_torch import TorchRunner

    torch.set_num_threads(threads)
    return Recognizer(TorchRunner.from_checkpoint(model, "cpu"), model, options)


def manifest_paths(manifest: str, limit: int | None) -> list[str]:
    """Audio paths of a manifest (relative ones against its folder); asr.manifest needs no
    torch, so the ONNX worker's memory stays torch-free."""
    from asr.manifest import read_manifest

    return [u.audio_filepath for u in read_manifest(manifest)][:limit]


def throughput_worker(model: str, runtime: str, args) -> dict:
    """In its own process: x real time one at a time and batched (greedy), and hypotheses
    greedy and with the model folder's LM."""
    from asr.decode import DecodingOptions

    recognizer = load_variant(model, runtime, args.threads)
    paths = manifest_paths(args.manifest, args.limit)
    batch = args.batch_size
    greedy = DecodingOptions()
    recognizer.transcribe(paths[:1], greedy)  # warm-up: lazy imports, first allocations
    start = time.perf_counter()
    hyps = [recognizer.transcribe([path], greedy)[0] for path in paths]
    single = time.perf_counter() - start
    start = time.perf_counter()
    recognizer.transcribe(paths, greedy, batch_size=batch)
    batched = time.perf_counter() - start
    with_lm = recognizer.transcribe(paths, recognizer.default_options, batch_size=batch)
    return {
        "audio_seconds": sum(t.duration for t in hyps),
        "single_seconds": single,
        "batched_seconds": batched,
        "greedy": [t.raw_text for t in hyps],  # the spoken words: what WER scores
        "lm": [t.raw_text for t in with_lm],
        "options": recognizer.default_options.to_dict(),
    }


def int8_folder(model: Path, out: Path) -> Path:
    """A folder with model.int8.onnx exported from model/model.pt, and the model's LM and
    decoding settings linked in."""
    from asr.inference.onnx_export import export_onnx

    export_onnx(model / "model.pt", out, half=True, int8=True)
    for name in ("decoding.json", "lm"):
        if (model / name).exists():
            (out / name).symlink_to((model / name).resolve())
    return out


def throughput(model: Path, args, tmp: Path) -> dict:
    from asr.manifest import read_manifest
    from asr.metrics import error_counts
    from asr.text import normalize_text

    refs = [normalize_text(u.text) for u in read_manifest(args.manifest)[: args.limit]]
    folders = {"torch fp32": model, "onnx": model, "onnx int8": int8_folder(model, tmp / "int8")}
    rows = {}
    for name, (runtime, graph) in VARIANTS.items():
        path = folders[name] / graph if graph else folders[name]
        command = [sys.executable, __file__, "--worker", runtime, str(path)]
        command += ["--manifest", args.manifest, "--batch-size", str(args.batch_size)]
        command += ["--threads", str(args.threads)]
        command += ["--limit", str(args.limit)] if args.limit else []
        _, peak, out = run_measured(command)
        record = json.loads(out.strip().splitlines()[-1])
        rows[name] = {
            "x_rt_single": record["audio_seconds"] / record["single_seconds"],
            "x_rt_batched": record["audio_seconds"] / record["batched_seconds"],
            "wer_greedy": error_counts(refs, [normalize_text(h) for h in record["greedy"]]).rate,
            "wer_lm": error_counts(refs, [normalize_text(h) for h in record["lm"]]).rate,
            "peak_mib": peak,
        }
    return rows


def pick_file(manifest: str, seconds: float, tmp: Path) -> tuple[Path, Path, float]:
    """The utterance closest to `seconds` long, and a one-line manifest of it."""
    from asr.manifest import read_manifest, write_manifest

    utt = min(read_manifest(manifest), key=lambda u: abs(u.duration - seconds))
    one = tmp / "one.jsonl"
    write_manifest(one, [utt])
    return Path(utt.audio_filepath), one, utt.duration


def report(cold: dict, seconds: float, rows: dict, args) -> None:
    print(f"\nCold start, one file of {seconds:.1f} s, from the shell (median of {args.repeats}):")
    print("| system | decoding | wall s | peak memory MiB |\n|---|---|---|---|")
    for (system, decoding), r in cold.items():
        print(f"| {system} | {decoding} | {r['wall_s']:.2f} | {r['peak_mib']:.0f} |")
    light, ps = cold[("light install", "LM")], cold[("pocketsphinx", "LM")]
    for what, key, limit in (("wall", "wall_s", WALL_TARGET), ("peak", "peak_mib", PEAK_TARGET)):
        ratio = light[key] / ps[key]
        verdict = "met" if ratio <= limit else f"missed by {ratio - limit:.2f}x"
        print(f"target: light install + LM {what} <= {limit}x pocketsphinx's: "
              f"{light[key]:.2f} / {ps[key]:.2f} = {ratio:.2f}x ({verdict})")  # fmt: skip
    if args.cold_only:
        return
    files = f"first {args.limit} files" if args.limit else "all files"
    print(f"\nThroughput on {args.manifest} ({files}), greedy decoding for x real time:")
    print(
        f"| variant | x real time, one at a time | x real time, batches of {args.batch_size} "
        "| WER % greedy | WER % with LM | peak memory MiB |\n|---|---|---|---|---|---|"
    )
    for name, r in rows.items():
        print(
            f"| {name} | {r['x_rt_single']:.1f} | {r['x_rt_batched']:.1f} | "
            f"{100 * r['wer_greedy']:.2f} | {100 * r['wer_lm']:.2f} | {r['peak_mib']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model folder (default: the bundled one)")
    parser.add_argument("--manifest", default="data/manifests/mini/dev.jsonl", help="dev set")
    parser.add_argument("--limit", type=int, default=None, help="first N files (default: all)")
    parser.add_argument("--batch-size", type=int, default=8, help="files per batch (batched)")
    parser.add_argument("--seconds", type=float, default=16.0, help="cold-start file length")
    parser.add_argument("--repeats", type=int, default=5, help="cold starts per system")
    parser.add_argument(
        "--pocketsphinx-env", default=".venv-pocketsphinx", help="pocketsphinx's own venv"
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch / onnxruntime threads"
    )
    parser.add_argument("--light-env", default=".venv-light", help="the light install's venv")
    parser.add_argument("--cold-only", action="store_true", help="the cold start rows alone")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--worker", nargs=2, metavar=("RUNTIME", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        runtime, model = args.worker
        print(json.dumps(throughput_worker(model, runtime, args)))
        return
    from asr.inference.recognizer import resolve_model_path

    model = resolve_model_path(args.model).resolve()
    args.manifest = str(Path(args.manifest).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        audio, one, seconds = pick_file(args.manifest, args.seconds, Path(tmp))
        ps_python = pocketsphinx_python(ROOT / args.pocketsphinx_env)
        light = light_venv(ROOT / args.light_env)
        commands = cold_start_commands(audio, one, model, ps_python, light)
        cold = cold_start(commands, args.repeats)
        rows = {} if args.cold_only else throughput(model, args, Path(tmp))
    report(cold, seconds, rows, args)
    if args.json:
        figures = {"cold_start": {" ".join(k): v for k, v in cold.items()}, "throughput": rows}
        Path(args.json).write_text(json.dumps({"file_seconds": seconds, **figures}, indent=2))


if __name__ == "__main__":
    main()
