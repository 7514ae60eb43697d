"""Bad input through the command line, and peak memory on long files (issue 13).

    nice -n 19 .venv/bin/python benchmarks/bad_input.py                  # full: 10 min and 1 h
    nice -n 19 .venv/bin/python benchmarks/bad_input.py --short-minutes 0.5 --long-minutes 2

Part 1 runs every row of the bad-input table (tests/test_bad_input.py: CASES) as a separate
`python -m asr` process and counts: cases tried, clear errors (the expected exit status and
every expected word in the message), tracebacks (must be 0) and silent wrong answers (exit
0 where the input was bad; must be 0). Then seeded byte mutations of a real WAV and
manifest, each run with a timeout: a traceback or a hang counts against it.

Part 2 writes low-amplitude noise with pauses (44.1 kHz stereo and 16 kHz mono, a short and
a long file of each) into a temporary folder, transcribes each in a fresh process with the
model (`--model`, default the bundled one and its LM) and prints the process's resident
size once the model is loaded (with its LM and decoder) and its peak during transcription.
Targets: peak at most 500 MiB above the loaded model, and the long file's peak within 10%
of the short one's.
The audio is deleted afterwards.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_bad_input import CASES, make_workspace  # noqa: E402  (the one table)

PYTHON = sys.executable

# Runs in a fresh process: resident size once the model is loaded (and its LM and decoder
# built by one second of silence), then the peak (VmHWM) after transcribing one file
# the way `asr transcribe` does.
_MEASURE = """
import sys
import numpy as np
from asr.inference.batch import transcribe_files
from asr.inference.recognizer import load_model

def status_mib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

model = None if sys.argv[2] == "bundled" else sys.argv[2]
recognizer = load_model(model)
recognizer.transcribe(np.zeros(16_000, np.float32))  # loads the LM and builds the decoder
loaded = status_mib("VmRSS")
report = transcribe_files(recognizer, [sys.argv[1]], recognizer.default_options, progress=False)
assert not report.failures, report.failures
peak = status_mib("VmHWM")  # not ru_maxrss: that keeps the forking parent's peak
print(f"{loaded:.0f} {peak:.0f} {report.audio_seconds:.1f} {report.seconds:.1f}")
"""


def run_case(argv: list[str], timeout: float) -> tuple[int | None, str, str]:
    try:
        done = subprocess.run(
            [PYTHON, "-m", "asr", *argv], capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return None, "", "hung"
    return done.returncode, done.stdout, done.stderr


def bad_input_table(folder: Path, fuzz_cases: int, timeout: float) -> dict:
    ws = make_workspace(folder)
    counts = {"tried": 0, "clear": 0, "ok": 0, "tracebacks": 0, "silent": 0, "hangs": 0}
    counts["other"] = []
    for case in CASES:
        code, out, err = run_case(case.argv.format(ws=ws).split(), timeout)
        _count(counts, case.name, code, out, err, case.exit, case.words)
    rng = random.Random(13)
    seeds = [ws / "good" / "utt0.wav", ws / "good.jsonl"]
    for i in range(fuzz_cases):
        source = seeds[i % 2]
        data = bytearray(source.read_bytes())
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256)
            if rng.random() < 0.3:
                del data[at : at + rng.randint(1, 64)]
        mutated = folder / f"fuzz{i}{source.suffix}"
        mutated.write_bytes(bytes(data))
        if source.suffix == ".wav":
            argv = ["transcribe", str(mutated), "--model", str(ws / "model"), "--quiet"]
        else:
            argv = ["data", "check", str(mutated)]
        code, out, err = run_case(argv, timeout)
        _count(counts, f"fuzz {i}", code, out, err, None, ())
    return counts


def _count(counts, name, code, out, err, expected, words) -> None:
    counts["tried"] += 1
    if code is None:
        counts["hangs"] += 1
        counts["other"].append(f"{name}: hung")
    elif "Traceback" in err:
        counts["tracebacks"] += 1
        counts["other"].append(f"{name}: traceback: {err.strip().splitlines()[-1]}")
    elif expected is None:  # fuzz: a result, or a message naming the problem
        counts["ok" if code == 0 else "clear"] += 1
    elif code == 0:
        counts["silent"] += 1
        counts["other"].append(f"{name}: exit 0 on bad input")
    elif code == expected and all(w.lower() in (out + err).lower() for w in words):
        counts["clear"] += 1
    else:
        counts["other"].append(f"{name}: exit {code}, message {(out + err).strip()[-200:]!r}")


def write_noise(path: Path, minutes: float, sample_rate: int, channels: int) -> None:
    """Low-amplitude noise, 4 s bursts between 0.6 s pauses, written block by block."""
    rng = np.random.default_rng(0)
    total, block = int(minutes * 60 * sample_rate), 46 * sample_rate
    with sf.SoundFile(path, "w", sample_rate, channels, "PCM_16") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            wave = 0.02 * rng.standard_normal((n, channels)).astype(np.float32)
            t = (start + np.arange(n)) / sample_rate
            wave[(t % 4.6) > 4.0] *= 0.001  # pauses for the splitter
            f.write(wave)


def measure(path: Path, model: str) -> tuple[float, float, float, float]:
    """(model loaded MiB, peak MiB, audio s, seconds) of `_MEASURE` on one file, in a fresh
    process; the file is removed afterwards."""
    done = subprocess.run(
        [PYTHON, "-c", _MEASURE, str(path), model], capture_output=True, text=True, cwd=ROOT
    )
    path.unlink()
    if done.returncode != 0:
        raise SystemExit(f"measuring {path.name} failed:\n{done.stderr[-2000:]}")
    loaded, peak, audio, seconds = map(float, done.stdout.split()[-4:])
    return loaded, peak, audio, seconds


def memory(folder: Path, model: str, short: float, long: float) -> list[tuple]:
    rows = []
    for rate, channels in ((44_100, 2), (16_000, 1)):
        for minutes in (short, long):
            path = folder / f"noise_{rate}_{channels}ch_{minutes:g}min.wav"
            write_noise(path, minutes, rate, channels)
            rows.append((rate, channels, minutes, *measure(path, model)))
    return rows


def odd_rates(folder: Path, model: str) -> list[tuple]:
    """Peak memory of 1 s files at rates whose exact resampling ratio needs thousands of
    filters (issue 25: 16001 Hz once took 6.1 GB); (rate, loaded, peak, seconds)."""
    rows = []
    for rate in (16_001, 44_101, 11_127, 22_254):
        path = folder / f"odd_{rate}.wav"
        write_noise(path, 1 / 60, rate, 1)
        loaded, peak, _, seconds = measure(path, model)
        rows.append((rate, loaded, peak, seconds))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="bundled", help="model folder for part 2")
    p.add_argument("--short-minutes", type=float, default=10.0, help="the short file")
    p.add_argument("--long-minutes", type=float, default=60.0, help="the long file")
    p.add_argument("--fuzz", type=int, default=40, help="mutated files run through the CLI")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per command: a hang")
    p.add_argument("--skip-memory", action="store_true", help="part 1 only")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="asr_bad_input_") as tmp:
        start = time.perf_counter()
        counts = bad_input_table(Path(tmp), args.fuzz, args.timeout)
        print(
            f"bad-input table: {len(CASES)} rows + {args.fuzz} fuzzed files, "
            f"{time.perf_counter() - start:.0f} s"
        )
        print(f"  cases tried:          {counts['tried']}")
        print(f"  clear errors:         {counts['clear']}")
        print(f"  transcribed (fuzz):   {counts['ok']}  (a mutation the audio survived)")
        print(f"  tracebacks:           {counts['tracebacks']}  (must be 0)")
        print(f"  silent wrong answers: {counts['silent']}  (must be 0)")
        print(f"  hangs:                {counts['hangs']}  (must be 0)")
        for line in counts["other"]:
            print(f"  ! {line}")
        if args.skip_memory:
            return
        rows = memory(Path(tmp), args.model, args.short_minutes, args.long_minutes)
        odd = odd_rates(Path(tmp), args.model)
    print("\npeak memory of 1 s at odd rates (MiB): rate, model loaded, peak, above, seconds")
    for rate, loaded, peak, seconds in odd:
        print(f"  {rate:>6} Hz {loaded:8.0f} {peak:7.0f} {peak - loaded:7.0f} {seconds:8.2f}")
    print("\npeak memory, `asr transcribe` of one file (MiB; model: " + args.model + ")")
    print(
        f"{'format':<18} {'minutes':>7} {'model loaded':>12} {'peak':>7} {'above':>7} "
        f"{'x real time':>11}"
    )
    for rate, channels, minutes, loaded, peak, audio, seconds in rows:
        fmt = f"{rate / 1000:g} kHz {'stereo' if channels == 2 else 'mono'}"
        speed = audio / seconds if seconds else 0.0
        print(
            f"{fmt:<18} {minutes:7g} {loaded:12.0f} {peak:7.0f} {peak - loaded:7.0f} {speed:11.1f}"
        )
    for i in (0, 2):
        short, long = rows[i][4], rows[i + 1][4]
        fmt = "44.1 kHz stereo" if i == 0 else "16 kHz mono"
        print(
            f"{fmt}: long/short peak {long / short:.3f} (target <= 1.10); "
            f"above the model {rows[i + 1][4] - rows[i + 1][3]:.0f} MiB (target <= 500)"
        )


if __name__ == "__main__":
    main()
