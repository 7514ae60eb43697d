"""Files named by a user: a folder stands for the files below it with the wanted endings."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

__all__ = ["expand_paths"]


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
