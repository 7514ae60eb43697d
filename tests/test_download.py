"""The verified downloader against a local HTTP server serving an archive built here."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asr.corpora.download import Archive, DownloadError, download_and_extract, librispeech_archive


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class ArchiveServer:
    """Serves `payload` at /x.tar.gz with Range support; `break_after` bytes cut the first
    response short (the connection closes mid-transfer). Records each request's Range."""

    def __init__(self, payload: bytes, break_after: int | None = None):
        self.payload, self.break_after, self.ranges = payload, break_after, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = int(header.split("=")[1].rstrip("-")) if header else 0
                body = server.payload[start:]
                self.send_response(206 if header else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.break_after is not None and len(server.ranges) == 1:
                    body = body[: server.break_after]
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/x.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def corpus_tar() -> bytes:
    rng = random.Random(0)  # incompressible, so the archive has some size to cut
    files = {f"LibriSpeech/tiny/1/2/1-2-{i:04d}.flac": rng.randbytes(40_000) for i in range(5)}
    files["LibriSpeech/tiny/1/2/1-2.trans.txt"] = b"1-2-0000 HELLO\n"
    return make_tar(files)


def archive_for(server: ArchiveServer, payload: bytes) -> Archive:
    return Archive(server.url, "sha256", hashlib.sha256(payload).hexdigest(), "LibriSpeech/tiny")


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_download_verify_extract_then_never_refetch(tmp_path, corpus_tar):
    server = ArchiveServer(corpus_tar)
    try:
        target = download_and_extract(archive_for(server, corpus_tar), tmp_path)
        assert (target / "1/2/1-2.trans.txt").read_bytes() == b"1-2-0000 HELLO\n"
        assert (tmp_path / "downloads/x.tar.gz").read_bytes() == corpus_tar
        assert not list(tmp_path.glob(".extract-*"))
        # Extracted corpus removed: the verified archive is re-extracted, not re-fetched.
        shutil.rmtree(tmp_path / "LibriSpeech")
        download_and_extract(archive_for(server, corpus_tar), tmp_path)
        assert server.ranges == [None]
        assert (target / "1/2/1-2-0004.flac").is_file()
    finally:
        server.close()


def test_interrupted_transfer_resumes_with_range(tmp_path, corpus_tar):
    server = ArchiveServer(corpus_tar, break_after=len(corpus_tar) // 3)
    try:
        target = download_and_extract(archive_for(server, corpus_tar), tmp_path)
    finally:
        server.close()
    assert server.ranges == [None, f"bytes={len(corpus_tar) // 3}-"]
    assert (tmp_path / "downloads/x.tar.gz").read_bytes() == corpus_tar
    assert (target / "1/2/1-2.trans.txt").is_file()


def test_resume_from_part_left_by_earlier_run(tmp_path, corpus_tar):
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads/x.tar.gz.part").write_bytes(corpus_tar[:100_000])
    server = ArchiveServer(corpus_tar)
    try:
        download_and_extract(archive_for(server, corpus_tar), tmp_path)
    finally:
        server.close()
    assert server.ranges == ["bytes=100000-"]
    assert (tmp_path / "LibriSpeech/tiny/1/2/1-2.trans.txt").is_file()


def test_corrupted_archive_rejected_before_extraction(tmp_path, corpus_tar):
    corrupted = bytearray(corpus_tar)
    corrupted[len(corrupted) // 2] ^= 0xFF
    server = ArchiveServer(bytes(corrupted))
    try:
        with pytest.raises(DownloadError, match=r"sha256 [0-9a-f]+ does not match the published"):
            download_and_extract(archive_for(server, corpus_tar), tmp_path)
    finally:
        server.close()
    assert leftovers(tmp_path) == ["downloads"]


def test_undecodable_archive_leaves_nothing_half_extracted(tmp_path, corpus_tar):
    truncated = corpus_tar[: len(corpus_tar) // 2]  # checksum published for the broken file
    server = ArchiveServer(truncated)
    try:
        with pytest.raises(DownloadError, match="extraction failed.*nothing was kept"):
            download_and_extract(archive_for(server, truncated), tmp_path)
    finally:
        server.close()
    assert leftovers(tmp_path) == ["downloads", "downloads/x.tar.gz"]


@pytest.mark.parametrize(
    "subset, url_end, algorithm",
    [
        ("dev-clean", "/resources/12/dev-clean.tar.gz", "sha256"),
        ("train-clean-100", "/resources/12/train-clean-100.tar.gz", "sha256"),
        ("train-clean-5", "/resources/31/train-clean-5.tar.gz", "md5"),
        ("dev-clean-2", "/resources/31/dev-clean-2.tar.gz", "md5"),
    ],
)
def test_librispeech_archive_table(subset, url_end, algorithm):
    archive = librispeech_archive(subset)
    assert archive.url == "https://www.openslr.org" + url_end
    assert archive.algorithm == algorithm
    assert len(archive.digest) == {"sha256": 64, "md5": 32}[algorithm]
    assert archive.member == f"LibriSpeech/{subset}"


def test_librispeech_archive_unknown_subset():
    with pytest.raises(DownloadError, match="unknown LibriSpeech subset 'train-clean-7'"):
        librispeech_archive("train-clean-7")


def test_cli_prepare_downloads_then_reads_the_corpus(tmp_path, monkeypatch, capsys):
    import soundfile as sf

    from asr.cli import main
    from asr.manifest import read_manifest

    wav = io.BytesIO()
    sf.write(wav, [0.1, -0.1] * 8000, 16_000, format="WAV")
    payload = make_tar(
        {
            "LibriSpeech/dev-clean-2/7/8/7-8-0000.wav": wav.getvalue(),
            "LibriSpeech/dev-clean-2/7/8/7-8.trans.txt": b"7-8-0000 A WORD\n",
        }
    )
    server = ArchiveServer(payload)
    mirror = server.url.rsplit("/", 1)[0]
    server.url = f"{mirror}/resources/31/dev-clean-2.tar.gz"  # the handler ignores the path
    monkeypatch.setitem(
        __import__("asr.corpora.download").corpora.download._MINI_MD5,
        "dev-clean-2",
        hashlib.md5(payload).hexdigest(),
    )
    try:
        rc = main(["data", "prepare", "librispeech", "--download", "--mirror", mirror,
                   "--root", str(tmp_path / "corpora"), "--subsets", "dev-clean-2",
                   "--out", str(tmp_path / "m")])  # fmt: skip
    finally:
        server.close()
    assert rc == 0
    assert [
        (u.id, u.text, u.duration) for u in read_manifest(tmp_path / "m/dev-clean-2.jsonl")
    ] == [("7-8-0000", "A WORD", 1.0)]
    assert server.ranges == [None]
