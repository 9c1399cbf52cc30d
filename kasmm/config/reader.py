"""Safe reading and parsing of YAML configuration files.

Hostile input never escapes as an exception other than :class:`FileProblem`, which carries a
0-based position and a message that never quotes file content beyond a key name or one
character: oversized, binary, vanished or undecodable files, syntax errors, duplicate keys,
aliases (refused outright, so no alias bombs), non-core tags, deep nesting and absurdly long
numbers are all refused. Parsing is YAML 1.2 with ruamel's round-trip loader, so the returned
tree carries line/column information (``.lc``) for every node.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import stat
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from ruamel.yaml.reader import ReaderError

from kasmm.config.locate import Pos, lc_pos

__all__ = [
    "MAX_DEPTH",
    "MAX_EVENTS",
    "MAX_FILE_BYTES",
    "FileProblem",
    "parse_yaml",
    "read_text",
    "root_pos",
    "to_plain",
]

MAX_FILE_BYTES = 1 << 20  #: Larger files are refused.
MAX_DEPTH = 32  #: Deeper nesting of mappings/sequences is refused.
#: More YAML events (nodes) than this are refused: ruamel's pure-Python round-trip loader is
#: slow, and a real profile has a few hundred. This bounds the time spent on a hostile file.
MAX_EVENTS = 20_000
_MAX_NUMBER_CHARS = 100
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")
)
_NUMBER_RE = re.compile(r"[-+]?[0-9_.]+(?:[eE][-+]?[0-9]+)?")
_DUP_KEY_RE = re.compile(r'found duplicate key "(.*?)" with value')


class FileProblem(Exception):
    """A file-level problem at a 0-based ``pos``; ``message`` is safe to print."""

    def __init__(self, pos: Pos, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


# --- reading and parsing --------------------------------------------------------------------


def read_text(path: Path) -> str:
    """Read a small regular UTF-8 file without following it into FIFOs or devices."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileProblem(
            (0, 0), "file not found (it may have been removed while loading)"
        ) from None
    except OSError as exc:
        raise FileProblem((0, 0), f"cannot open file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem((0, 0), "not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise FileProblem((0, 0), f"file is larger than {MAX_FILE_BYTES} bytes; refused")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileProblem((0, 0), f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise FileProblem((0, 0), f"file is larger than {MAX_FILE_BYTES} bytes; refused")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise FileProblem(
            _byte_pos(data, nul), "binary file (contains NUL bytes); expected YAML text"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(
            _byte_pos(data, exc.start), "not valid UTF-8 text (binary file?)"
        ) from None


def _byte_pos(data: bytes, offset: int) -> Pos:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return (data.count(b"\n", 0, offset), offset - line_start)


def _mark_pos(mark: Any) -> Pos:
    return (int(getattr(mark, "line", 0)), int(getattr(mark, "column", 0)))


def _prescan(yaml: YAML, text: str) -> None:
    """Walk the event stream once: refuse aliases, non-core tags, deep nesting, long numbers."""
    depth = 0
    for count, event in enumerate(yaml.parse(text)):
        pos = _mark_pos(event.start_mark)
        if count > MAX_EVENTS:
            raise FileProblem(pos, f"more than {MAX_EVENTS} YAML nodes; refused")
        if isinstance(event, AliasEvent):
            raise FileProblem(pos, "YAML aliases (*name) are not supported; write the values out")
        tag = getattr(event, "tag", None)
        if tag is not None and str(tag) not in _CORE_TAGS:
            raise FileProblem(pos, f"YAML tag {str(tag)[:60]!r} is not supported")
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise FileProblem(pos, f"nesting deeper than {MAX_DEPTH} levels; refused")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        elif (
            isinstance(event, ScalarEvent)
            and event.style is None
            and len(event.value) > _MAX_NUMBER_CHARS
            and _NUMBER_RE.fullmatch(event.value)
        ):
            raise FileProblem(pos, f"number longer than {_MAX_NUMBER_CHARS} characters; refused")


def parse_yaml(text: str) -> Any:
    """Parse YAML 1.2 text into a ruamel round-trip tree; every error becomes ``FileProblem``.

    Memoised by text: a reload re-reads every file of the directory but re-parses only the
    ones whose content changed. The tree is shared: callers must not modify it.
    """
    return _parse_yaml_cached(text)


@functools.lru_cache(maxsize=4096)
def _parse_yaml_cached(text: str) -> Any:
    yaml = YAML(typ="rt")
    try:
        _prescan(yaml, text)
        return yaml.load(text)
    except FileProblem:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or exc.context or "invalid YAML")
        dup = _DUP_KEY_RE.search(problem)
        if dup is not None or "duplicate key" in problem:
            problem = f'duplicate key "{dup.group(1)[:64]}"' if dup else "duplicate key"
        elif exc.context and exc.problem:
            ctx, prob = str(exc.context), str(exc.problem)
            problem = f"{ctx} {prob}" if prob.startswith("but ") else f"{prob} ({ctx})"
        if "'\\t'" in problem:
            problem += "; indent with spaces, YAML does not allow tabs"
        raise FileProblem(_mark_pos(mark), f"YAML syntax error: {problem}") from None
    except ReaderError as exc:
        offset = max(0, int(exc.position))
        line = text.count("\n", 0, offset)
        col = offset - (text.rfind("\n", 0, offset) + 1)
        raise FileProblem((line, col), f"invalid character in YAML: {exc.reason}") from None
    except (YAMLError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        detail = str(exc)[:200]
        if any(q in detail for q in "'\"`"):  # may quote file content: do not echo it
            detail = type(exc).__name__
        raise FileProblem((0, 0), f"invalid YAML: {detail}") from None


def to_plain(node: Any, pos: Pos) -> Any:
    """Copy a ruamel tree into plain dict/list/str/int/float/bool/None values."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise FileProblem(lc_pos(node, "key", key, pos), "mapping keys must be strings")
            out[str(key)] = to_plain(value, lc_pos(node, "value", key, pos))
        return out
    if isinstance(node, list):
        return [to_plain(item, lc_pos(node, "item", i, pos)) for i, item in enumerate(node)]
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return bool(node) if type(node).__name__ == "ScalarBoolean" else int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime.date):  # an unquoted timestamp: let the schema judge the text
        return node.isoformat()
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag == "tag:yaml.org,2002:str" and isinstance(getattr(node, "value", None), str):
        return str(node.value)
    raise FileProblem(pos, f"unsupported YAML value of type {type(node).__name__}")


def root_pos(node: Any) -> Pos:
    """0-based position where a parsed node starts ((0, 0) when unknown)."""
    try:
        return (int(node.lc.line), int(node.lc.col))
    except Exception:
        return (0, 0)
