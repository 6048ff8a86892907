"""What every run config of dctmodel shares, whatever it trains.

A run config is a frozen dataclass whose dataclass-valued fields are its
*sections* (``data``, ``model``, ``train``) and whose other fields are
top-level values (``name``).  These helpers work on any such config:
``dctmodel.config`` (the DCTransformer) and ``dctmodel.hrvqvae.config`` use
them, so both name a field ``section.field`` in the same way, say the same
things about a bad value, and read their ``config.json`` back the same way.

No jax here: checking a command line must not wait for it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from typing import Any

TypeCheck = Callable[[Any], bool]


def sections(cfg) -> list[str]:
    """The names of ``cfg``'s dataclass-valued fields, in declaration order."""
    return [f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))]


def override(cfg, **kw):
    """``override(cfg, **{"model.d_model": 32, "train.batch_size": 4, "name": "x"})``.

    Unknown names raise ValueError listing the section's fields; values are
    checked by the config's ``check_config`` (which training runs), not here,
    so that a chain of overrides may pass through a combination that is not
    valid alone.
    """
    secs = sections(cfg)
    parts: dict[str, dict] = {s: {} for s in secs}
    top: dict = {}
    for k, v in kw.items():
        head, _, tail = k.partition(".")
        if not tail:
            head, tail = "", head
        if head and head not in parts:
            raise ValueError(f"unknown config section {head!r} in {k!r}; sections: {', '.join(secs)}")
        names = (
            {f.name for f in dataclasses.fields(getattr(cfg, head))}
            if head
            else {f.name for f in dataclasses.fields(cfg)} - set(secs)
        )
        if tail not in names:
            where = f"section {head!r}" if head else "the top level"
            raise ValueError(f"unknown config field {k!r}; {where} has {', '.join(sorted(names))}")
        (parts[head] if head else top)[tail] = v
    return dataclasses.replace(cfg, **{s: dataclasses.replace(getattr(cfg, s), **parts[s]) for s in secs}, **top)


def check_types(cfg, skip: Iterable[str] = (), named: dict[str, TypeCheck] | None = None) -> None:
    """Raise ValueError naming the first section field whose value does not have its
    annotated type (``model.d_model must be int, got '64'``).  ``skip``: dotted
    names checked elsewhere; ``named``: checks for type aliases (``LayerSpec``)."""
    for sec in sections(cfg):
        for f in dataclasses.fields(getattr(cfg, sec)):
            v = getattr(getattr(cfg, sec), f.name)
            if f"{sec}.{f.name}" not in skip and not has_type(v, str(f.type), named):
                raise ValueError(f"{sec}.{f.name} must be {f.type}, got {v!r}")


def has_type(v, typ: str, named: dict[str, TypeCheck] | None = None) -> bool:
    """Whether ``v`` has the annotated type ``typ`` (a string: the modules use
    ``from __future__ import annotations``).  bool is not an int here."""
    # Both spellings of each: typing's and the builtin one (PEP 585 / 604).
    if typ.startswith("Optional["):
        return v is None or has_type(v, typ[len("Optional[") : -1], named)
    if typ.endswith(" | None"):
        return v is None or has_type(v, typ[: -len(" | None")], named)
    if typ.startswith(("Tuple[", "tuple[")) and typ.endswith(", ...]"):
        return isinstance(v, tuple) and all(has_type(x, typ[len("tuple[") : -len(", ...]")], named) for x in v)
    if typ == "bool":
        return isinstance(v, bool)
    if typ == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if typ == "float":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if typ == "str":
        return isinstance(v, str)
    if named and typ in named:
        return named[typ](v)
    raise AssertionError(f"no check for field type {typ}")  # a new field type: teach this function


def requirement(cfg) -> Callable[[bool, str, str], None]:
    """``need = requirement(cfg)``; ``need(ok, "train.steps", ">= 1")`` raises
    ValueError("train.steps must be >= 1, got 0") unless ``ok``."""

    def need(ok: bool, field: str, rule: str) -> None:
        if not ok:
            sec, _, name = field.partition(".")
            raise ValueError(f"{field} must be {rule}, got {getattr(getattr(cfg, sec), name)!r}")

    return need


def from_dict(cls, d: dict):
    """Inverse of ``dataclasses.asdict(cfg)`` for a config class ``cls`` (e.g. a
    work directory's config.json): sections are rebuilt from their dicts and
    JSON lists become tuples again, as the frozen configs hold them.  An
    unknown key is a TypeError, as for the constructor."""
    hints = typing.get_type_hints(cls)
    return cls(
        **{
            k: from_dict(hints[k], v) if isinstance(v, dict) and dataclasses.is_dataclass(hints.get(k)) else _tuples(v)
            for k, v in d.items()
        }
    )


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v
