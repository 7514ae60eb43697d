"""The base of every error a user can fix: its message is the whole story.

Subclassed where each kind is raised (a bad audio file, config, manifest, model file,
hotword...); `asr.errors.user_message` prints it after "asr: error:" with no traceback, and
the command exits with its `exit_code`. A leaf: it imports nothing, so any module can use it.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """An error whose message says what to fix; the CLI exits with `exit_code`."""

    exit_code = 2
