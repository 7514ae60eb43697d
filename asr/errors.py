"""The one place where library errors become the command line's one-line messages.

`user_message` turns an exception into what `asr` prints after "asr: error:" (exit 2), or
None for a bug, which keeps its traceback. Operating-system errors name their path and
say what went wrong in words (permission denied, disk full, not a folder).
"""

from __future__ import annotations

import errno

from asr.audio import AudioError
from asr.checkpoint import CheckpointError
from asr.config import ConfigError
from asr.corpora.download import DownloadError
from asr.corpora.importers import CorpusError
from asr.corpora.synth import SynthError
from asr.decode import DecodingError
from asr.hotwords import HotwordError
from asr.inference.formats import OutputError
from asr.inference.lm import LMError
from asr.manifest import ManifestError

__all__ = ["USER_ERRORS", "user_message"]

# Errors whose message is already the user's: one line, no traceback.
USER_ERRORS = (AudioError, CheckpointError, ConfigError, CorpusError, DownloadError, LMError)
USER_ERRORS += (DecodingError, HotwordError, ManifestError, OutputError, SynthError)

_OS_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.ENOTDIR: "a path component is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "already exists",
    errno.ENOENT: "no such file or folder",
}


def user_message(err: BaseException) -> str | None:
    """The message for an error the user can act on; None for anything else (a bug)."""
    if isinstance(err, USER_ERRORS):
        return _without_worker_traceback(str(err))
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 text ({err.reason} at byte {err.start})"
    if isinstance(err, OSError):
        reason = _OS_REASONS.get(err.errno, err.strerror) if err.errno else None
        path = err.filename
        if reason and path is not None:
            return f"{path}: {reason}"
        return f"{reason}" if reason else str(err)
    return None


def _without_worker_traceback(message: str) -> str:
    """The original message of an error re-raised from a DataLoader worker, whose message
    torch prefixes with the worker's traceback."""
    if "\nOriginal Traceback" not in message:
        return message
    last = message.strip().splitlines()[-1]  # "asr.audio.AudioError: <the message>"
    return last.split(": ", 1)[-1]
