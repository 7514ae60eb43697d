"""This project's model against pocketsphinx on the same files, scored the same way.

    python benchmarks/compare_pocketsphinx.py --manifest exp/mini/dev.jsonl [--model MODEL_DIR]
    bash benchmarks/run_comparison.sh      # the README's table: shared dev + synthetic test

pocketsphinx 5.1.1 (its bundled en-us acoustic model, LM and dictionary) runs in its own
virtual environment, which this script makes on first use (`--pocketsphinx-env`, default
.venv-pocketsphinx) with `python -m venv` and `pip install pocketsphinx==5.1.1 soundfile numpy`.

Every system runs in its own process, one utterance at a time, so each reports its own peak
memory (ru_maxrss) and decode time; model loading is timed separately. Hypotheses and
references pass through the project's normalizer before WER/CER.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEMS = ("pocketsphinx", "greedy", "beam", "beam+lm")
POCKETSPHINX_PACKAGES = ("pocketsphinx==5.1.1", "soundfile", "numpy")


def pocketsphinx_python(env: Path) -> Path:
    """The interpreter of pocketsphinx's own environment, made (once) when missing."""
    python = env / "bin" / "python"
    if not python.exists():
        print(f"creating {env} with {' '.join(POCKETSPHINX_PACKAGES)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", *POCKETSPHINX_PACKAGES]
        subprocess.run(pip, check=True)
    return python


def run_asr(system: str, manifest: str, model: str) -> dict:
    """Decode with this project (in the current process) and return the runner's record."""
    from dataclasses import replace

    from asr.decode import DecodingOptions
    from asr.inference.recognizer import load_model
    from asr.manifest import read_manifest

    start = time.perf_counter()
    recognizer = load_model(model, "cpu")
    if system == "greedy":
        options = DecodingOptions()
    elif system == "beam":
        options = DecodingOptions(decoder="beam")
    else:
        options = replace(recognizer.default_options, decoder="beam")  # the folder's own LM
        if not options.lm_path:
            raise SystemExit(f"{model}: no LM (lm/lm.bin or decoding.json) for beam+lm")
    recognizer.transcribe([read_manifest(manifest)[0].audio_filepath], options)  # warm-up
    load_seconds = time.perf_counter() - start
    hyps, audio_seconds, decode_seconds = [], 0.0, 0.0
    for utt in read_manifest(manifest):
        start = time.perf_counter()
        (result,) = recognizer.transcribe([utt.audio_filepath], options)
        decode_seconds += time.perf_counter() - start
        hyps.append(result.raw_text)  # the spoken words: what WER scores
        audio_seconds += result.duration
    return {
        "hyps": hyps,
        "audio_seconds": audio_seconds,
        "decode_seconds": decode_seconds,
        "load_seconds": load_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "options": options.to_dict(),
    }


def run_system(system: str, args) -> dict:
    if system == "pocketsphinx":
        python = pocketsphinx_python(Path(args.pocketsphinx_env))
        command = [str(python), str(HERE / "pocketsphinx_runner.py"), args.manifest]
    else:
        command = [sys.executable, __file__, "--run", system, "--manifest", args.manifest,
                   "--model", args.model]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{system} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def score(record: dict, manifest: str) -> dict:
    from asr.manifest import read_manifest
    from asr.metrics import error_counts
    from asr.text import normalize_text

    refs = [normalize_text(u.text) for u in read_manifest(manifest)]
    hyps = [normalize_text(h) for h in record["hyps"]]
    return {
        "wer": error_counts(refs, hyps, "word").rate,
        "cer": error_counts(refs, hyps, "char").rate,
        "speed": record["audio_seconds"] / record["decode_seconds"],
        "peak_rss_mib": record["peak_rss_mib"],
        "load_seconds": record["load_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", required=True, help="JSON-lines manifest, 16 kHz audio")
    parser.add_argument("--model", default=None, help="asr model (default: the bundled one)")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument(
        "--pocketsphinx-env", default=".venv-pocketsphinx", help="pocketsphinx's own venv"
    )
    parser.add_argument("--run", choices=SYSTEMS[1:], help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    if args.model is None:
        from asr.inference.recognizer import resolve_model_path

        args.model = str(resolve_model_path(None))
    if args.run:
        print(json.dumps(run_asr(args.run, args.manifest, args.model)))
        return
    rows = {}
    print(f"manifest: {args.manifest}\n")
    print("| system | WER % | CER % | speed (x real time) | peak memory MiB | load s |")
    print("|---|---|---|---|---|---|")
    for system in args.systems:
        rows[system] = score(run_system(system, args), args.manifest)
        r = rows[system]
        print(
            f"| {system} | {100 * r['wer']:.2f} | {100 * r['cer']:.2f} | {r['speed']:.1f} | "
            f"{r['peak_rss_mib']:.0f} | {r['load_seconds']:.1f} |",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
