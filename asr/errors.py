"""The one place where library errors become the command line's one-line messages.

`user_message` turns an exception into what `asr` prints after "asr: error:", or None for a
bug, which keeps its traceback. The user's errors are every `asr.usererror.UserError` (the
command exits with its `exit_code`) and operating-system errors, which name their path and
say what went wrong in words (permission denied, disk full, not a folder).
"""

from __future__ import annotations

import errno

from asr.usererror import UserError

__all__ = ["describe_os_error", "exit_code", "user_message"]

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
    if isinstance(err, UserError):
        return _without_worker_traceback(str(err))
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 text ({err.reason} at byte {err.start})"
    if isinstance(err, OSError):
        reason = describe_os_error(err)
        return f"{err.filename}: {reason}" if err.filename is not None else reason
    return None


def describe_os_error(err: OSError) -> str:
    """What went wrong, in words: "no space left on the device (disk full)", "permission
    denied"...; the system's text for the rest."""
    reason = _OS_REASONS.get(err.errno, err.strerror) if err.errno else None
    return reason or str(err)


def exit_code(err: BaseException) -> int:
    """The exit status for an error `user_message` words: its own, else 2."""
    return getattr(err, "exit_code", 2) if isinstance(err, UserError) else 2


def _without_worker_traceback(message: str) -> str:
    """The original message of an error re-raised from a DataLoader worker, whose message
    torch prefixes with the worker's traceback."""
    if "\nOriginal Traceback" not in message:
        return message
    last = message.strip().splitlines()[-1]  # "asr.audio.AudioError: <the message>"
    return last.split(": ", 1)[-1]
