"""Which tests wait on or measure real time, so that ``make test`` never runs them beside others.

``make test`` runs each pass in two parts: the tests that wait on or measure real time
(``-m realtime``) one at a time with nothing beside them, and the tests that only compute
(``-m 'not realtime'``): on the source, beside the compiler building the hot path; compiled,
spread over the cores by pytest-xdist. A test that sleeps, holds a deadline, reads a real clock,
runs a process or a thread, or talks over loopback would get slower, or fail, sharing a core; so
it runs alone, as before.

The rule, applied at collection by ``tests/conftest.py`` (so it cannot drift from a list):

* everything under ``tests/integration`` and ``tests/contract`` (bots, supervisors and venues on
  real event loops, processes and sockets);
* a ``tests/unit`` module whose source, or the source of a test module it imports (an emulator,
  a fake, another test module: not :mod:`tests.support`, whose real-time helpers are caught by
  name where they are called), shows one of :data:`SIGNS`;
* a hypothesis test that keeps a deadline (hypothesis times every example against it).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Final

from hypothesis import settings as hypothesis_settings

TESTS: Final = Path(__file__).resolve().parent

#: Whole directories of real-time tests.
REALTIME_DIRS: Final = (TESTS / "integration", TESTS / "contract")

#: What in a test module's source says it waits on or measures real time, by kind.
SIGNS: Final[dict[str, re.Pattern[str]]] = {
    # A bare checkpoint (sleep(0)) waits for nothing.
    "sleeps": re.compile(r"\b(?:time|anyio|asyncio|trio)\.sleep\((?!0\))"),
    "reads a real clock": re.compile(
        r"\btime\.(?:monotonic|perf_counter|thread_time|process_time|time)(?:_ns)?\("
        r"|\bRealClock\b|\bloop\.time\(|\bdatetime\.now\("
    ),
    "holds a deadline": re.compile(
        r"\b(?:fail_after|move_on_after|wait_for|timeout|eventually|wait_until)\("
    ),
    "runs a process or a thread": re.compile(
        r"\b(?:subprocess|multiprocessing|threading|to_thread|run_in_executor"
        r"|ThreadPoolExecutor|ProcessPoolExecutor|os\.fork|chromium)\b"
    ),
    "talks over loopback": re.compile(
        r"\b(?:aiohttp|socket|serve_control|create_server|urlopen|http_get|tests\.emulators)\b"
    ),
}

#: Test modules whose helpers only compute; the real-time ones are caught where they are called.
_NOT_FOLLOWED: Final = frozenset({"tests.support"})


def signs_in(source: str) -> list[str]:
    """The kinds of :data:`SIGNS` that ``source`` shows, in :data:`SIGNS` order."""
    return [kind for kind, pattern in SIGNS.items() if pattern.search(source)]


def is_realtime_path(path: Path) -> bool:
    """Whether the tests of the module at ``path`` wait on or measure real time."""
    path = path.resolve()
    if any(path.is_relative_to(directory) for directory in REALTIME_DIRS):
        return True
    return bool(module_signs(path))


@cache
def module_signs(path: Path) -> tuple[str, ...]:
    """The signs of real time in the module at ``path`` and in the test modules it imports
    (transitively), each as ``"kind (module)"``."""
    found: list[str] = []
    for module in _with_imported_test_modules(path):
        source = module.read_text(encoding="utf-8")
        found += [f"{kind} ({module.relative_to(TESTS.parent)})" for kind in signs_in(source)]
    return tuple(found)


def _with_imported_test_modules(path: Path) -> list[Path]:
    seen: dict[Path, None] = {}
    todo = [path]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen[module] = None
        tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
        todo += [m for m in _test_module_paths(_imported_names(tree)) if m not in seen]
    return list(seen)


def _imported_names(tree: ast.Module) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # ``from tests.emulators import gate``: a module imported by name.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _test_module_paths(names: Iterable[str]) -> Iterable[Path]:
    for name in names:
        if not name.startswith("tests.") or name in _NOT_FOLLOWED:
            continue
        base = TESTS.parent.joinpath(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                yield candidate.resolve()
                break


def keeps_a_hypothesis_deadline(function: object) -> bool:
    """Whether ``function`` is a hypothesis test that times its examples (a deadline set)."""
    if getattr(function, "hypothesis", None) is None:
        return False
    own: hypothesis_settings | None = getattr(function, "_hypothesis_internal_use_settings", None)
    # No @settings: the profile's (hypothesis's default: 200 ms).
    settings = own if own is not None else hypothesis_settings.default
    return settings is not None and settings.deadline is not None
