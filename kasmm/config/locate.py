"""Map validation errors back to YAML positions and readable field paths.

Pydantic reports an error at a ``loc`` tuple that mixes real keys with discriminated-union tags
(``('venue', 'sim', 'balances')``: ``sim`` is the tag, not a key). :func:`split_loc` walks the
model types along the ``loc`` to drop such tags, and :func:`locate` walks the ruamel round-trip
tree along the remaining keys to find the 0-based ``(line, col)`` of the offending node.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from kasmm.config.hummingbot import hummingbot_hint

__all__ = [
    "FieldPath",
    "Pos",
    "describe_error",
    "field_str",
    "lc_pos",
    "locate",
    "short",
    "split_loc",
]

Pos = tuple[int, int]  #: 0-based (line, column)
FieldPath = tuple[str | int, ...]  #: real keys and list indexes from the profile root

_PATTERN_HINTS = {
    "symbol": "must be BASE/QUOTE in upper-case letters or digits, e.g. KAS/USDT",
    "name": "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
    "account": "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
    "order_prefix": "must be 2-8 lower-case letters or digits",
    "rest_url": "must be an http:// or https:// URL",
    "ws_url": "must be a ws:// or wss:// URL",
    "end": "must be a 24-hour time HH:MM, e.g. 17:30",
    "at": "must be a 24-hour time HH:MM, e.g. 18:00",
    "exchange": "must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter or "
    "digit",
}
#: Hints of fields whose last key alone is ambiguous: (parent key, key) -> hint.
_PATTERN_HINTS_IN = {
    ("world", "name"): "must be 1-32 lower-case letters, digits, '-' or '_', starting with a "
    "letter or digit",
}


def _pattern_hint(path: FieldPath) -> str | None:
    """What a field's pattern asks for, in words (``None``: pydantic's message stays)."""
    if len(path) >= 2 and (str(path[-2]), str(path[-1])) in _PATTERN_HINTS_IN:
        return _PATTERN_HINTS_IN[(str(path[-2]), str(path[-1]))]
    return _PATTERN_HINTS.get(str(path[-1])) if path else None


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    """Members of a union (``None`` dropped), or ``[tp]``."""
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [_unwrap(a) for a in get_args(tp) if a is not type(None)]
    return [tp]


def _models(tp: Any) -> list[type[BaseModel]]:
    return [m for m in _members(tp) if isinstance(m, type) and issubclass(m, BaseModel)]


def _tags(model: type[BaseModel]) -> list[str]:
    """Discriminator values of a union member (its ``type`` or ``model`` literal)."""
    out: list[str] = []
    for name in ("type", "model"):
        info = model.model_fields.get(name)
        if info is not None and get_origin(info.annotation) is Literal:
            out.extend(str(a) for a in get_args(info.annotation))
    return out


def split_loc(
    model: type[BaseModel], loc: Sequence[str | int]
) -> tuple[FieldPath, bool, type[BaseModel] | None, Any]:
    """Drop union tags from ``loc``.

    Returns the real path, whether the error is about a mapping key (``[key]``), the model
    owning the last path element, and the type found at the end of the path.
    """
    path: list[str | int] = []
    current: Any = model
    owner: type[BaseModel] | None = None
    for part in loc:
        if part == "[key]":
            return tuple(path), True, owner, current
        models = _models(current) if current is not None else []
        if len(models) > 1 and isinstance(part, str):
            tagged = [m for m in models if part in _tags(m)]
            if tagged:
                current = tagged[0]
                continue
        if models and isinstance(part, str):
            owner = models[0]
            info = owner.model_fields.get(part)
            current = info.annotation if info is not None else None
            path.append(part)
            continue
        members = _members(current) if current is not None else []
        tp = members[0] if len(members) == 1 else None
        origin = get_origin(tp)
        args = get_args(tp)
        if origin is dict and len(args) == 2:
            current = args[1]
        elif origin in (tuple, list) and args:
            current = args[0]
        else:
            current = None
        path.append(part)
    return tuple(path), False, owner, current


def _child(node: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(node, dict) and isinstance(part, str) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def lc_pos(node: Any, kind: str, key: Any, default: Pos) -> Pos:
    try:
        line, col = getattr(node.lc, kind)(key)
        return (int(line), int(col))
    except Exception:  # positions are best effort
        return default


def locate(root: Any, root_pos: Pos, path: FieldPath, *, at_key: bool = False) -> Pos:
    """0-based position of ``path`` in the ruamel tree ``root``.

    A scalar is located at its value, a mapping or list at its key (where the user wrote
    ``modes:``); with ``at_key`` the last element is located at its key even if scalar. A path
    that leaves the tree (a missing field) stops at the deepest existing parent.
    """
    node, pos = root, root_pos
    for i, part in enumerate(path):
        found, child = _child(node, part)
        if not found:
            break
        last = i == len(path) - 1
        if isinstance(node, list):
            pos = lc_pos(node, "item", part, pos)
        elif isinstance(child, dict | list) or (at_key and last):
            pos = lc_pos(node, "key", part, pos)
        else:
            pos = lc_pos(node, "value", part, pos)
        node = child
    return pos


def field_str(path: FieldPath) -> str:
    """``('schedule', 0, 'cron')`` -> ``schedule[0].cron``; the empty path is ``-``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = short(part)
            out += f".{text}" if out else text
    return out or "-"


def short(text: str, limit: int = 64) -> str:
    """``text`` cut to ``limit`` characters (keys of hostile files can be huge)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _node_at(root: Any, path: FieldPath) -> Any:
    node = root
    for part in path:
        found, node = _child(node, part)
        if not found:
            return None
    return node


def describe_error(
    model: type[BaseModel], root: Any, root_pos: Pos, error: Mapping[str, object]
) -> tuple[Pos, str, str]:
    """Position, dotted field and message of one pydantic error (its input is never used)."""
    raw_loc = error.get("loc", ())
    loc = (
        tuple(p for p in raw_loc if isinstance(p, str | int)) if isinstance(raw_loc, tuple) else ()
    )
    etype = str(error.get("type", ""))
    message = str(error.get("msg", "invalid value"))
    raw_ctx = error.get("ctx")
    ctx: Mapping[str, object] = raw_ctx if isinstance(raw_ctx, Mapping) else {}
    path, key_error, owner, current = split_loc(model, loc)
    at_key = key_error
    if etype == "missing":
        message = "required field is missing"
    elif etype == "extra_forbidden" and path:
        at_key = True
        message = f"unknown key {short(str(path[-1]))!r}"
        if owner is not None:
            allowed = sorted(owner.model_fields)
            close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
            message += f"; allowed: {', '.join(allowed)}"
        if (hint := hummingbot_hint(str(path[-1]))) is not None:
            message += f"; {hint}"
    elif etype == "string_pattern_mismatch" and (hint := _pattern_hint(path)) is not None:
        message = hint
    elif etype in ("union_tag_invalid", "union_tag_not_found", "market_model"):
        disc = "model" if etype == "market_model" else str(ctx.get("discriminator", "type"))
        disc = disc.strip("'\"")
        expected = ", ".join(repr(t) for m in _models(current) for t in _tags(m))
        node = _node_at(root, path)
        if isinstance(node, dict) and disc in node:
            path = (*path, disc)
            message = f"unknown {disc}; expected one of {expected}"
        elif etype == "union_tag_not_found":
            message = f"missing key {disc!r} (one of {expected})"
            if isinstance(node, dict):
                return locate(root, root_pos, path), field_str((*path, disc)), message
    message = " ".join(message.split())
    return locate(root, root_pos, path, at_key=at_key), field_str(path), message
