"""Command-line flags from dataclass fields: a verb's options are written once, as the
fields of the dataclass its library call takes (`asr.config.option` gives each its help),
and `add_fields` / `given` turn them into argparse flags and back. Used by `asr.cli`.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import fields

__all__ = ["Formatter", "add_fields", "command", "given", "positive_int", "verbs"]


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def command(sub, name: str, help: str, description: str = "") -> argparse.ArgumentParser:
    """A subcommand whose --help shows every option's default."""
    return sub.add_parser(name, help=help, description=description, formatter_class=Formatter)


def verbs(sub, name: str, help: str):
    """A command grouping commands of its own (asr data ..., asr lm ..., asr decode ...)."""
    parser = sub.add_parser(name, help=help)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def add_fields(group, cls, unset: bool = False, choices: dict | None = None) -> None:
    """A flag per field of the dataclass `cls` whose metadata has its help (and, optionally,
    its `flag` name, a `parse` function, `cli` False for none): the dataclass writes each
    option once. `unset`: a flag not given is absent from the arguments (the library then
    decides), its help naming the built-in default."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if "help" not in f.metadata or not f.metadata.get("cli", True):
            continue
        kind = next((t for t in typing.get_args(hints[f.name]) if t is not type(None)), None)
        kind = kind or hints[f.name]  # the T of "T | None", or the type itself
        how: dict = {"type": kind, "default": f.default}
        if f.metadata.get("parse"):
            how["type"] = flag_parser(f.metadata["parse"])
        elif kind is bool:
            how = {"action": argparse.BooleanOptionalAction, "default": f.default}
        elif f.metadata.get("nargs"):  # several values after one flag
            element = typing.get_args(hints[f.name])[0]  # the T of tuple[T, ...]
            how = {"type": element, "nargs": f.metadata["nargs"], "default": list(f.default)}
        elif isinstance(f.default, tuple):  # a repeatable flag
            how = {"action": "append", "default": []}
        if f.name in (choices or {}):
            how["choices"] = choices[f.name]
        help = f.metadata["help"]
        if unset:
            how["default"], help = argparse.SUPPRESS, f"{help} (built-in: {f.default})"
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        group.add_argument(flag, dest=f.name, help=help, **how)


def given(args, cls) -> dict:
    """The flags of `add_fields(cls)` that were given (lists as tuples), by field name."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if f.name in args}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def flag_parser(parse):
    """`parse` for argparse: its ValueError's message becomes the flag's error."""

    def parse_flag(text: str):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse_flag
