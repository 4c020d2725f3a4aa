"""Command-line options made from the config dataclasses: a flag's default is the field's, so they cannot drift.

    add_options(parser, TrainConfig, skip={"resume"}, names={"out_dir": "--out"})
    cfg = TrainConfig(**options(args, TrainConfig, skip={"resume"}))

A field `num_threads` becomes `--num-threads` (or the name given in `names`); its type is its annotation's
(`epochs: float = 3` reads "0.5"; a bool becomes a pair `--x/--no-x`); its help is the field's `metadata["help"]` (see `option`).
"""
from __future__ import annotations

import argparse
import dataclasses


def option(default, help: str):
    """A config field with the help text its command-line flag shows. A callable `default` is called each time a
    default is needed (a dataclass default_factory): a path under the runs root, which $KIT_RUNS moves
    (kit.results.run_dir), is found when the config or the parser is made, not when the module is imported."""
    if callable(default):
        return dataclasses.field(default_factory=default, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def default(field):
    """A dataclass field's default now: its value, or what its factory gives."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


# the annotations are strings (`from __future__ import annotations` in the config modules)
TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _flag(field, names: dict) -> str:
    return names.get(field.name, "--" + field.name.replace("_", "-"))


def add_options(parser, cls, skip=(), names: dict | None = None, title: str | None = None):
    """One flag per field of the dataclass `cls` (except `skip`), in a group named `title`."""
    group = parser.add_argument_group(title or f"{cls.__name__} (defaults are the config's)")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag, text = _flag(f, names or {}), f.metadata.get("help", "")
        kind = TYPES.get(f.type if isinstance(f.type, str) else f.type.__name__)
        if kind is None:
            raise TypeError(f"{cls.__name__}.{f.name}: a {f.type} field has no command-line form; skip it")
        if kind is bool:
            group.add_argument(flag, dest=f.name, default=default(f), action=argparse.BooleanOptionalAction, help=text)
        else:
            group.add_argument(flag, dest=f.name, default=default(f), type=kind, metavar=f.name.upper(),
                               help=f"{text} (default: %(default)s)" if text else "(default: %(default)s)")
    return group


def options(args, cls, skip=()) -> dict:
    """The values of `cls`'s fields parsed from the command line, ready for `cls(**...)`."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in skip}


def flags(obj, skip=(), names: dict | None = None) -> list[str]:
    """The command-line words that give a dataclass instance's non-default values back (the inverse of
    `options`): a recorded run's command that reruns it. A field whose default is made when needed (a path under
    the runs root, kit.results.run_dir) is always written: the command names the folder this run used, not the one
    $KIT_RUNS would give where it is rerun."""
    words = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in skip or value == f.default:   # MISSING for a made default: always written
            continue
        flag = _flag(f, names or {})
        words += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return words
