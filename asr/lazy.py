"""Names a package exports but imports on first use (PEP 562), so that importing the
package loads nothing else. A package's `__init__.py` names each export's module:

    _EXPORTS = {"load_model": "asr.inference.recognizer", ...}
    __getattr__ = functools.partial(lazy_attribute, globals(), _EXPORTS)
    __dir__ = functools.partial(lazy_names, globals(), _EXPORTS)
"""

from __future__ import annotations

import importlib

__all__ = ["lazy_attribute", "lazy_names"]


def lazy_attribute(namespace: dict, exports: dict[str, str], name: str):
    """The package attribute `name`, imported from the module `exports` names for it and
    kept in the package's `namespace`, so that later look-ups skip this function."""
    if name not in exports:
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(exports[name]), name)
    namespace[name] = value
    return value


def lazy_names(namespace: dict, exports: dict[str, str]) -> list[str]:
    """dir() of the package: what it holds and what it exports."""
    return sorted([*namespace, *exports])
