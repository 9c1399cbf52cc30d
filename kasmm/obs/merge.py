"""Several Prometheus text expositions (0.0.4) merged into one, each sample labelled by its source.

``kasmm supervise --processes N`` serves one ``/metrics`` for N shard processes. Their bodies
cannot simply be concatenated: every shard writes the same families (``kasmm_profiles``,
``process_cpu_seconds_total``, ...), and the format wants each family once, with one HELP and
one TYPE line and all its samples together. :func:`merge_expositions` groups the samples of
every source by family, in the order families first appear, and adds a ``shard="I"`` label to
every sample: the per-process series (CPU, event loop lag, reloads) would otherwise collide, and
per-profile series keep their ``profile`` label, so queries by profile do not change.

The work is a few regular-expression passes over each family's block of sample lines (C speed:
a shard's body is some 20 KB per profile), never a parse into per-sample objects. Sources are
trusted to be well-formed expositions (kasmm's own children); a family whose TYPE differs from
the one already seen (children of two kasmm versions during an upgrade) is dropped for that
source and named in the result, rather than written into an exposition Prometheus would reject.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Merged", "merge_expositions"]

_NAME = rb"[a-zA-Z_:][a-zA-Z0-9_:]*"
#: A ``# HELP name ...`` or ``# TYPE name ...`` line.
_META = re.compile(rb"^# (HELP|TYPE) (" + _NAME + rb")(?:[ \t][^\n]*)?$", re.M)
#: A sample line with labels, with no labels, and with an empty label set.
_WITH_LABELS = re.compile(rb"^(" + _NAME + rb")\{(?=[^}])", re.M)
_EMPTY_LABELS = re.compile(rb"^(" + _NAME + rb")\{\}", re.M)
_NO_LABELS = re.compile(rb"^(" + _NAME + rb")(?=[ \t])", re.M)
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:/-]*")


@dataclass
class _Family:
    help: bytes = b""
    type: bytes = b""
    blocks: list[bytes] = field(default_factory=list)


@dataclass
class Merged:
    """The merged body (in pieces, to be written in order) and the families dropped per source."""

    pieces: list[bytes]
    conflicts: dict[str, list[str]]


def _labelled(block: bytes, label: bytes) -> bytes:
    """``block``'s sample lines with ``label`` (``shard="0"``) added to each."""
    block = _WITH_LABELS.sub(rb"\1{" + label + rb",", block)
    block = _EMPTY_LABELS.sub(rb"\1{" + label + rb"}", block)
    return _NO_LABELS.sub(rb"\1{" + label + rb"}", block)


def merge_expositions(
    sources: Sequence[tuple[str, bytes]], *, label: str = "shard", tail: bytes = b""
) -> Merged:
    """Merge ``(label value, exposition)`` pairs into one exposition.

    :param sources: each source's label value (e.g. ``"0"``) and its body.
    :param label: the label added to every sample of a source; must not be one the sources use.
    :param tail: an exposition appended as it is (the merging process's own families, whose
        names no source may use).
    :raises ValueError: a label value outside ``[A-Za-z0-9_.:/-]`` (it is written unescaped).
    """
    families: dict[bytes, _Family] = {}
    conflicts: dict[str, list[str]] = {}
    for value, body in sources:
        if not _LABEL_VALUE.fullmatch(value):
            raise ValueError(f"label value {value!r} would need escaping")
        pair = f'{label}="{value}"'.encode()
        _add_source(families, body, pair, conflicts.setdefault(value, []))
    pieces: list[bytes] = []
    for family in families.values():
        if family.help:
            pieces.append(family.help)
        if family.type:
            pieces.append(family.type)
        pieces.extend(family.blocks)
    if tail:
        pieces.append(tail if tail.endswith(b"\n") else tail + b"\n")
    return Merged(pieces, {value: names for value, names in conflicts.items() if names})


def _add_source(
    families: dict[bytes, _Family], body: bytes, pair: bytes, conflicts: list[str]
) -> None:
    """Add one source's families; names of the families it disagrees on go to ``conflicts``."""
    if body and not body.endswith(b"\n"):
        body += b"\n"
    # Samples before any HELP/TYPE (kasmm never writes them) go to an untyped group of their
    # own rather than being dropped.
    current = families.setdefault(b"", _Family())
    skipping = False
    at = 0
    for match in _META.finditer(body):
        _add_block(current, skipping, body[at : match.start()], pair)
        at = match.end() + 1
        kind, name = match.group(1), match.group(2)
        line = match.group(0) + b"\n"
        current = families.setdefault(name, _Family())
        if kind == b"HELP":
            current.help = current.help or line
            skipping = False  # decided by the TYPE line, which comes before the samples
            continue
        current.type = current.type or line
        skipping = current.type != line
        if skipping:
            conflicts.append(name.decode())
    _add_block(current, skipping, body[at:], pair)


def _add_block(family: _Family, skipping: bool, block: bytes, pair: bytes) -> None:
    if not skipping and block.strip():
        family.blocks.append(_labelled(block, pair))
