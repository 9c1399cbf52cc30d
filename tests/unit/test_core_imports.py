"""``kasmm/core`` is pure: it imports nothing of the configuration, the venues, I/O or clocks.

Checked on the source with ``ast`` (every import statement, including those under
``if TYPE_CHECKING:`` and inside functions), so a violation is found without importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "kasmm" / "core"

#: Modules (and their submodules) the core must not import: the configuration and pydantic
#: (the core takes frozen plain values), event loops and clocks (decisions take ``now`` as an
#: argument), venues and other I/O.
FORBIDDEN = (
    "pydantic",
    "anyio",
    "asyncio",
    "trio",
    "time",
    "ccxt",
    "aiohttp",
    "socket",
    "sqlite3",
    "structlog",
)


def imported_modules(source: str, module: str) -> list[str]:
    """Absolute names of every module ``source`` (the text of ``module``) imports."""
    package = module.rsplit(".", 1)[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                names.append(f"{base}.{node.module}" if node.module else base)
            elif node.module is not None:
                names.append(node.module)
    return names


def violations(source: str, module: str) -> list[str]:
    """The imports of ``module`` that break the core's purity."""
    out = []
    for name in imported_modules(source, module):
        root = name.split(".")[0]
        outside_core = root == "kasmm" and not (
            name == "kasmm.core" or name.startswith("kasmm.core.")
        )
        if outside_core or any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
            out.append(name)
    return out


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_nothing_impure(path: Path) -> None:
    module = f"kasmm.core.{path.stem}"
    assert violations(path.read_text(), module) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from kasmm.config.schema import Profile", ["kasmm.config.schema"]),
        ("import kasmm.venues.sim", ["kasmm.venues.sim"]),
        ("from kasmm import clock", ["kasmm"]),
        ("from ..config import schema", ["kasmm.config"]),
        ("from . import types", []),
        ("from .types import Side", []),
        ("import time", ["time"]),
        ("import pydantic.fields", ["pydantic.fields"]),
        ("from anyio import sleep", ["anyio"]),
        ("import timeit, datetime", []),  # a prefix of a name is not the module
        ("if TYPE_CHECKING:\n    from kasmm.config.schema import Profile", ["kasmm.config.schema"]),
        ("def f():\n    import anyio", ["anyio"]),
    ],
)
def test_the_check_finds_what_it_must(source: str, found: list[str]) -> None:
    assert violations(source, "kasmm.core.example") == found
