"""Verified corpus downloads: resumable HTTP, checksum before extraction, atomic extraction.

    asr data prepare librispeech --download --root data/corpora --subsets train-clean-5 dev-clean-2

An archive is fetched to `<name>.part`, resumed with an HTTP Range request when the
transfer breaks, and renamed to its final name only once its published checksum matches:
a file with the final name is not fetched again, but its checksum is checked before each
use. Extraction goes to a temporary folder beside the target, renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from asr.usererror import UserError

__all__ = [
    "Archive",
    "DownloadError",
    "download_and_extract",
    "download_librispeech",
    "fetch",
    "librispeech_archive",
    "verify",
]

log = logging.getLogger(__name__)

OPENSLR = "https://www.openslr.org"
# Mini LibriSpeech (OpenSLR 31): the MD5 sums OpenSLR publishes in its md5sum.txt.
_MINI_MD5 = {
    "train-clean-5": "5df7d4e78065366204ca6845bb08f490",
    "dev-clean-2": "6d7ab67ac6a1d2c993d050e16d61080d",
}
_CHUNK = 1 << 20
_RETRIES = 5  # resumed attempts after a broken transfer


class DownloadError(UserError, RuntimeError):
    """A download or extraction that failed; nothing unverified is left in place."""


@dataclass(frozen=True)
class Archive:
    url: str  # where to fetch it
    algorithm: str  # hashlib name of the published checksum: "sha256" or "md5"
    digest: str  # the published checksum, hex
    member: str  # folder inside the archive to move into place, e.g. "LibriSpeech/dev-clean"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _librispeech_sha256() -> dict[str, str]:
    """LibriSpeech (OpenSLR 12) SHA-256 sums, as torchaudio's dataset module carries them."""
    from torchaudio.datasets import librispeech

    return {url.rsplit("/", 1)[-1]: digest for url, digest in librispeech._CHECKSUMS.items()}


def librispeech_archive(subset: str, mirror: str | None = None) -> Archive:
    """The archive of a LibriSpeech (resource 12) or Mini LibriSpeech (resource 31) subset."""
    base = (mirror or OPENSLR).rstrip("/")
    member = f"LibriSpeech/{subset}"
    if subset in _MINI_MD5:
        url = f"{base}/resources/31/{subset}.tar.gz"
        return Archive(url, "md5", _MINI_MD5[subset], member)
    sha256 = _librispeech_sha256()
    if f"{subset}.tar.gz" not in sha256:
        known = sorted([*(n.removesuffix(".tar.gz") for n in sha256), *_MINI_MD5])
        raise DownloadError(f"unknown LibriSpeech subset {subset!r}; known: {known}")
    url = f"{base}/resources/12/{subset}.tar.gz"
    return Archive(url, "sha256", sha256[f"{subset}.tar.gz"], member)


def verify(path: Path, archive: Archive) -> None:
    """Raise DownloadError unless `path` has the archive's published checksum."""
    digest = hashlib.new(archive.algorithm)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != archive.digest:
        raise DownloadError(
            f"{path}: {archive.algorithm} {digest.hexdigest()} does not match the published "
            f"{archive.digest} for {archive.url}"
        )


def _fetch_once(url: str, part: Path) -> bool:
    """Append to `part` from where it stops; True when the server says it is complete."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the range starts at the end: nothing left to fetch
            return True
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    with response:
        resumed = response.status == 206
        mode = "ab" if resumed else "wb"  # a server ignoring Range sends the whole file
        expected = response.headers.get("Content-Length")
        received = 0
        with part.open(mode) as f:
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                received += len(chunk)
    return expected is None or received >= int(expected)


def fetch(url: str, dest: Path) -> None:
    """Download `url` to `dest + '.part'`, resuming after broken transfers (not verified)."""
    part = dest.with_name(dest.name + ".part")
    for attempt in range(_RETRIES + 1):
        try:
            if _fetch_once(url, part):
                return
        except (OSError, http.client.HTTPException) as err:
            if isinstance(err, urllib.error.HTTPError):
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
            log.warning("%s: transfer broken (%s)", url, err)
        size = part.stat().st_size if part.exists() else 0
        log.warning("%s: resuming at byte %d (attempt %d)", url, size, attempt + 1)
    raise DownloadError(f"{url}: still incomplete after {_RETRIES} resumed attempts ({part})")


def _download_verified(archive: Archive, folder: Path) -> Path:
    dest = folder / archive.filename
    if dest.is_file():  # verified again: the file may have been put there by hand, or damaged
        try:
            verify(dest, archive)
        except DownloadError as err:
            raise DownloadError(
                f"{err}; the archive already at {dest} is corrupt: delete it and run again"
            ) from err
        log.info("%s: already downloaded and verified", dest)
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    fetch(archive.url, dest)
    part = dest.with_name(dest.name + ".part")
    try:
        verify(part, archive)
    except DownloadError as err:
        part.unlink()
        raise DownloadError(f"{err}; the download was removed, run again to refetch") from err
    part.replace(dest)
    return dest


def _extract(tar_path: Path, archive: Archive, root: Path) -> Path:
    target = root / archive.member
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".extract-{tar_path.name}-", dir=root))
    try:
        with tarfile.open(tar_path) as tar:
            tar.extractall(staging, filter="data")
        extracted = staging / archive.member
        if not extracted.is_dir():
            raise DownloadError(f"{tar_path}: the archive holds no {archive.member}/ folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        extracted.replace(target)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DownloadError(f"{tar_path}: extraction failed ({err}); nothing was kept") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_and_extract(archive: Archive, root: str | Path) -> Path:
    """Fetch, verify and extract `archive` under `root`; returns `<root>/<member>`.

    Each step is skipped when its result is already in place."""
    root = Path(root)
    if (root / archive.member).is_dir():
        return root / archive.member
    tar_path = _download_verified(archive, root / "downloads")
    return _extract(tar_path, archive, root)


def download_librispeech(subset: str, root: str | Path, mirror: str | None = None) -> Path:
    """`<root>/LibriSpeech/<subset>`, downloaded from OpenSLR (or `mirror`) if absent."""
    return download_and_extract(librispeech_archive(subset, mirror), root)
