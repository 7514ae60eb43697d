"""Files named by a user, and files written for one.

A folder named stands for the files below it with the wanted endings (`expand_paths`).
Every file `asr` writes for a user (transcripts, reports, checkpoints, feature-cache
entries) is written whole or not at all (`atomic_write`): into a temporary file beside it,
then renamed over it, with the mode a plainly created file would have; a write that fails
leaves no temporary file and raises FileWriteError naming the path and the reason in words
("disk full"), whatever layer (torch's zip writer, numpy) the OSError came through.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import IO

from asr.errors import describe_os_error
from asr.usererror import UserError

__all__ = ["FileWriteError", "atomic_write", "expand_paths", "file_mode", "write_atomic"]


# A file name that is not UTF-8 reaches Python as surrogate escapes; written back with
# them, it is the same bytes the system named the file with (a JSON transcript's "file").
_TEXT = {"encoding": "utf-8", "errors": "surrogateescape"}


class FileWriteError(UserError):
    """A file that could not be written (a full disk, no permission); the file it would
    have replaced is untouched. `os_error`: the OSError behind it."""

    def __init__(self, message: str, os_error: OSError | None = None):
        super().__init__(message)
        self.os_error = os_error


def expand_paths(
    items: Sequence[str | Path], suffixes: Collection[str], error: type[Exception]
) -> list[Path]:
    """Files as given; folders replaced by the files below them whose suffix (lower case) is
    one of `suffixes`, sorted. A missing path, a folder that cannot be listed, or one without
    such files raises `error`."""
    paths = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise error(f"{path}: permission denied: cannot list the folder")
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)
            if not found:
                raise error(f"{path}: folder holds no {' / '.join(sorted(suffixes))} files")
            paths += found
        elif path.exists():
            paths.append(path)
        else:
            raise error(f"{path}: no such file or folder")
    return paths


def file_mode() -> int:
    """The mode `open()` gives a new file: 0o666 less the process's umask (0o644 under the
    usual umask 022). mkstemp's 0o600 would hide an installed model from other users."""
    try:
        with open("/proc/self/status") as f:  # read without changing it (threads)
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | Path, binary: bool = False, durable: bool = True) -> Iterator[IO]:
    """A file object to write `path` through: a temporary file `<name>*.tmp` beside it,
    renamed over `path` when the block ends without an exception (after an fsync of the
    file and its folder when `durable`), else removed. UTF-8 text (`_TEXT`) unless `binary`. An
    OSError on the way, even one chained behind another exception, raises FileWriteError.

        with atomic_write(out_dir / "report.txt") as f:
            f.write(report)
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else _TEXT)) as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), file_mode())
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException as err:
        Path(tmp_name).unlink(missing_ok=True)
        os_error = os_error_behind(err)
        if os_error is None or isinstance(err, FileWriteError):
            raise
        raise _write_error(path, os_error) from err
    if durable:
        _fsync_dir(path.parent)


def write_atomic(path: str | Path, data: str | bytes, durable: bool = True) -> Path:
    """`data` (UTF-8 text, or bytes) as the whole of `path`, by `atomic_write`."""
    with atomic_write(path, binary=isinstance(data, bytes), durable=durable) as f:
        f.write(data)
    return Path(path)


def os_error_behind(err: BaseException | None) -> OSError | None:
    """The OSError behind `err`: itself, or one it was raised from or while handling
    (torch's zip writer raises a RuntimeError with the OSError as its __context__)."""
    while err is not None:
        if isinstance(err, OSError):
            return err
        err = err.__cause__ or err.__context__
    return None


def _write_error(path: Path, err: OSError) -> FileWriteError:
    return FileWriteError(f"{path}: cannot write: {describe_os_error(err)}", err)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
