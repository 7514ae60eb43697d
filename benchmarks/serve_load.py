"""Load test of `asr serve` on this machine: concurrent clients, good and bad uploads.

    python benchmarks/serve_load.py                                   # 200 requests, 8 clients
    nice -n 19 python benchmarks/serve_load.py --requests 10 --clients 2   # a smoke run

Starts `python -m asr serve` on 127.0.0.1 (never another address) at a free port, with a
5 MiB upload limit. Makes 5-20 s recordings from data/samples/sample.wav (repeated, at
8, 16, 22.05 and 44.1 kHz, mono and stereo, WAV, FLAC and Ogg) and bad files (not audio,
empty, truncated, over the limit), transcribes the good ones once with `asr transcribe`
for reference, then sends the requests (one in ten bad) and prints: requests per second,
latency p50/p95, the server's peak memory and its memory over the first and the last 50
requests, and whether every good request got the CLI's transcript and every bad one its
error code. One warm-up request (the first beam search loads the LM) is not counted.
Bounded: --requests requests, --time-limit seconds for the whole run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import load_audio, resample

HOST = "127.0.0.1"  # the only address this benchmark talks to
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "sample.wav"
MAX_UPLOAD_MB = 5
URL = "/v1/audio/transcriptions"


@dataclass
class Upload:
    path: Path
    expected: int  # HTTP status
    text: str | None = None  # the CLI's transcript, for good files


@dataclass
class Result:
    upload: Upload
    status: int
    text: str | None
    seconds: float
    finished: float  # time.monotonic() at the response


# --- test files --------------------------------------------------------------------------


def _repeat(wave: np.ndarray, times: int, gap_s: float = 0.3) -> np.ndarray:
    gap = np.zeros(int(gap_s * 16_000), np.float32)
    return np.concatenate([np.concatenate([wave, gap])] * times)[: int(19.5 * 16_000)]


def make_uploads(folder: Path) -> list[Upload]:
    """Good recordings of 5-20 s in several formats, then the bad files."""
    wave = load_audio(SAMPLE)  # (S,) at 16 kHz, 5.2 s
    # (name, repetitions, sample rate, channels, soundfile format)
    variants = [
        ("x1_16k.wav", 1, 16_000, 1, "WAV"),
        ("x2_16k.flac", 2, 16_000, 1, "FLAC"),
        ("x3_44k_stereo.wav", 3, 44_100, 2, "WAV"),
        ("x4_8k.wav", 4, 8_000, 1, "WAV"),
        ("x2_22k.ogg", 2, 22_050, 1, "OGG"),
        ("x3_16k_quiet.wav", 3, 16_000, 1, "WAV"),
    ]
    uploads = []
    for name, times, rate, channels, fmt in variants:
        audio = resample(_repeat(wave, times), 16_000, rate)
        audio = audio * (0.3 if "quiet" in name else 1.0)
        audio = np.stack([audio] * channels, axis=1) if channels > 1 else audio
        sf.write(folder / name, audio, rate, format=fmt)
        uploads.append(Upload(folder / name, 200))
    (folder / "notes.txt").write_text("these are not audio samples\n")
    (folder / "empty.wav").write_bytes(b"")
    flac = (folder / "x2_16k.flac").read_bytes()
    (folder / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    noise = np.random.default_rng(0).standard_normal(int(1.1 * MAX_UPLOAD_MB * 2**20 / 2))
    sf.write(folder / "big.wav", 0.1 * noise, 16_000, subtype="PCM_16")
    bad = [("notes.txt", 400), ("empty.wav", 400), ("truncated.flac", 400), ("big.wav", 413)]
    return uploads + [Upload(folder / name, status) for name, status in bad]


def cli_transcripts(uploads: list[Upload], model: str | None) -> None:
    """Fill in `text` of the good uploads with what `asr transcribe` prints for them."""
    good = [u for u in uploads if u.expected == 200]
    command = [sys.executable, "-m", "asr", "transcribe", *(str(u.path) for u in good)]
    command += ["--output-format", "json", "--device", "cpu"]
    command += ["--model", model] if model else []
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    for upload, record in zip(good, json.loads(out.stdout), strict=True):
        upload.text = record["text"]


# --- server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int, model: str | None, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "asr", "serve", "--host", HOST, "--port", str(port)]
    command += ["--workers", str(workers), "--max-upload-mb", str(MAX_UPLOAD_MB), "--device", "cpu"]
    command += ["--model", model] if model else []
    with open(log_path, "w") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def wait_ready(server: subprocess.Popen, port: int, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {seconds:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


class MemorySampler(threading.Thread):
    """Resident memory (MiB) of one process, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (time.monotonic(), MiB)
        self.stop = threading.Event()

    def field(self, name: str) -> float:
        for line in self.status.read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
        raise KeyError(name)

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), self.field("VmRSS")))
            time.sleep(self.interval)

    def peak_between(self, start: float, end: float) -> float:
        return max((mib for t, mib in self.samples if start <= t <= end), default=float("nan"))


# --- clients -----------------------------------------------------------------------------


def _multipart(path: Path, response_format: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\n'
        f'{response_format}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _post(port: int, body: bytes, content_type: str) -> tuple[int, bytes]:
    """POST with `Expect: 100-continue`, as curl does for large bodies: the body is sent
    only once the server asks for it, so a refusal (413, 503) comes back before it."""
    head = (
        f"POST {URL} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((HOST, port), timeout=300) as sock:
        sock.sendall(head.encode())
        reply = sock.makefile("rb")
        status_line = reply.readline()
        if status_line.split()[1:2] == [b"100"]:
            while reply.readline() not in (b"\r\n", b""):
                pass
            sock.sendall(body)
            status_line = reply.readline()
        while reply.readline() not in (b"\r\n", b""):  # headers; the body runs to EOF
            pass
        return int(status_line.split()[1]), reply.read()


def send(port: int, upload: Upload, response_format: str) -> Result:
    body, content_type = _multipart(upload.path, response_format)
    started = time.monotonic()
    try:
        status, data = _post(port, body, content_type)
    except (OSError, IndexError, ValueError):  # no or a garbled answer
        status, data = -1, b""
    finished = time.monotonic()
    text = json.loads(data)["text"] if status == 200 else None
    return Result(upload, status, text, finished - started, finished)


def schedule(uploads: list[Upload], count: int) -> list[tuple[Upload, str]]:
    """Request i: a bad file when i % 10 == 9, else the next good one; json or verbose_json."""
    good = [u for u in uploads if u.expected == 200]
    bad = [u for u in uploads if u.expected != 200]
    plan = []
    for i in range(count):
        upload = bad[(i // 10) % len(bad)] if i % 10 == 9 else good[i % len(good)]
        plan.append((upload, "verbose_json" if i % 3 == 0 else "json"))
    return plan


def run_clients(port: int, plan, clients: int, deadline: float) -> list[Result]:
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(_send_before, port, u, fmt, deadline) for u, fmt in plan]
        return [r for r in (f.result() for f in futures) if r is not None]


def _send_before(port: int, upload: Upload, response_format: str, deadline: float):
    return send(port, upload, response_format) if time.monotonic() < deadline else None


# --- report ------------------------------------------------------------------------------


def report(results: list[Result], planned: int, wall: float, memory: MemorySampler, peak, log):
    seconds = np.array([r.seconds for r in results])
    good = [r for r in results if r.upload.expected == 200]
    wrong_text = [r for r in good if r.status != 200 or r.text != r.upload.text]
    wrong_code = [r for r in results if r.upload.expected != 200 and r.status != r.upload.expected]
    by_time = sorted(results, key=lambda r: r.finished)
    window = min(50, len(by_time) // 2)
    first = memory.peak_between(memory.samples[0][0], by_time[window - 1].finished)
    last = memory.peak_between(by_time[-window].finished, by_time[-1].finished)
    logged = sum(f"POST {URL}" in line for line in log.read_text().splitlines())
    print(
        f"requests: {len(results)} of {planned} sent in {wall:.1f} s -> {len(results) / wall:.2f}/s"
    )
    print(
        f"latency: p50 {np.percentile(seconds, 50):.2f} s, p95 {np.percentile(seconds, 95):.2f} s"
    )
    print(f"server peak memory (VmHWM): {peak:.0f} MiB")
    print(
        f"server memory, peak over the first {window} requests: {first:.0f} MiB, last: {last:.0f}"
    )
    print(f"good requests with the CLI's transcript: {len(good) - len(wrong_text)} of {len(good)}")
    bad = len(results) - len(good)
    print(f"bad requests with their error code: {bad - len(wrong_code)} of {bad}")
    print(f"server log lines for transcription requests (the warm-up included): {logged}")
    for r in wrong_text + wrong_code:
        print(f"  MISMATCH {r.upload.path.name}: {r.status} (expected {r.upload.expected})")
    return not (wrong_text or wrong_code) and len(results) == planned


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests to send")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers")
    parser.add_argument("--model", default=None, help="model (default: the bundled one)")
    parser.add_argument("--time-limit", type=float, default=1800.0, help="seconds, whole run")
    args = parser.parse_args()
    deadline = time.monotonic() + args.time_limit
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        folder = Path(tmp)
        uploads = make_uploads(folder)
        cli_transcripts(uploads, args.model)
        port = _free_port()
        server = start_server(port, args.workers, args.model, folder / "server.log")
        try:
            wait_ready(server, port)
            warm_up = send(port, uploads[0], "json")  # loads the LM; not counted
            if warm_up.status != 200:
                raise RuntimeError(f"warm-up request answered {warm_up.status}")
            memory = MemorySampler(server.pid)
            memory.start()
            started = time.monotonic()
            results = run_clients(port, schedule(uploads, args.requests), args.clients, deadline)
            wall = time.monotonic() - started
            memory.stop.set()
            peak = memory.field("VmHWM")
        finally:
            stop_server(server)
        print(f"server: {args.workers} workers on {os.cpu_count()} CPUs; {args.clients} clients")
        ok = report(results, args.requests, wall, memory, peak, folder / "server.log")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
