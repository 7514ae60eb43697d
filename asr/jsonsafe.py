"""The one reader of JSON from outside: bounded in size, nesting depth and digits.

`json.loads` raises JSONDecodeError for bad syntax, but other types at the limits: a
5,001-digit integer is a ValueError (Python's limit on converting digits), 200,000-deep
nesting a RecursionError, and a 401-digit integer it accepts becomes an OverflowError
later, when the value is used as a float. `loads` refuses all of these before parsing,
with one error naming the source, so every reader of a manifest line, decoding.json,
lm.json or a client's message says the same thing in words.

    record = loads(line, f"{manifest}:{lineno}")

`check_bounds` applies the same limits to any literal (the TOML values of `--set`).
A leaf: it imports only the UserError base.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

from asr.usererror import UserError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "JSONInputError",
    "check_bounds",
    "load_file",
    "loads",
]

MAX_BYTES = 1 << 20  # a manifest line, decoding.json, lm.json or a client's message
MAX_DEPTH = 32  # none of those nests more than 3 deep
# A float64 is written in at most 17 significant digits; 100 digits keep every value a
# float can hold (up to 1.8e308 needs 309 only as an integer written out in full, which
# nothing here writes), and `float()` of any such integer is finite.
MAX_DIGITS = 100

# Strings are skipped when counting brackets and digits: "[[[" inside a string is text.
# Double quotes for JSON (and TOML basic strings), single quotes for TOML literal strings.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\'\n]*\'', re.DOTALL)
_BRACKET = re.compile(r"[\[{}\]]")
_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_DIGITS + 1},}}")


class JSONInputError(UserError, ValueError):
    """JSON (or a literal) from outside that is malformed or past a bound; the message
    names where it came from."""


def check_bounds(text: str, source: str, max_bytes: int = MAX_BYTES) -> None:
    """JSONInputError naming `source` when `text` is longer than `max_bytes` characters,
    nests deeper than MAX_DEPTH, or holds a number of more than MAX_DIGITS digits."""
    if len(text) > max_bytes:
        raise JSONInputError(f"{source}: {len(text)} characters; at most {max_bytes} are read")
    bare = _STRING.sub('""', text)
    steps = (1 if b in "[{" else -1 for b in _BRACKET.findall(bare))
    depth = max(accumulate(steps), default=0)
    if depth > MAX_DEPTH:
        raise JSONInputError(f"{source}: nested {depth} deep; at most {MAX_DEPTH} levels")
    long = _LONG_NUMBER.search(bare)
    if long:
        raise JSONInputError(
            f"{source}: a number of {len(long.group())} digits; at most {MAX_DIGITS}"
        )


def loads(text: str | bytes, source: str, max_bytes: int = MAX_BYTES) -> Any:
    """Parse JSON from outside, or raise JSONInputError naming `source` ("file.jsonl:3").

    NaN and Infinity are parsed as floats (json.dumps writes them), for the reader to
    refuse with the field's name."""
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise JSONInputError(f"{source}: {len(text)} bytes; at most {max_bytes} are read")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise JSONInputError(f"{source}: not UTF-8 text ({err.reason})") from None
    check_bounds(text, source, max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise JSONInputError(f"{source}: not valid JSON ({err})") from None
    except (ValueError, RecursionError, OverflowError) as err:  # past a bound not checked above
        raise JSONInputError(f"{source}: not JSON this reads ({err})") from None


def load_file(path: str | Path, max_bytes: int = MAX_BYTES) -> Any:
    """`loads` of a whole file, refused by its size before it is read."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise JSONInputError(f"{path}: {size} bytes; at most {max_bytes} are read")
    return loads(path.read_bytes(), str(path), max_bytes)
