"""The compiled hot path: which modules mypyc compiles, and whether this process runs them.

The Python source is the reference and always works. ``make native`` (``scripts/build_native.py``)
compiles :data:`COMPILED_MODULES` with mypyc into extension modules beside their ``.py`` files
and writes a stamp with the SHA-256 of each module's source. Python prefers an extension module
to a source file of the same name, so a compiled module that no longer matches its source would
silently run old code. :func:`activate` (called by ``import kasmm``) prevents that: unless the
stamp matches every source, it puts a finder in front of the import system that loads every
listed module from its ``.py`` file.

All or nothing: compiled modules of one build call each other directly (through the build's
shared library), so a mix of compiled and source modules would run two versions of the same code.

Environment: ``KASMM_PURE=1`` runs the source even when a matching build exists (the reference,
for comparisons and for the test suite); ``KASMM_REQUIRE_NATIVE=1`` makes ``import kasmm`` fail
when the compiled modules cannot be used (so a compiled test run cannot quietly test the source).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

#: The modules on the decision path of a backtest and of a live bot: the pure core, the engine
#: and its state, the simulated market models, the backtest loop. All synchronous: the async
#: shell (the bot driver, the event intake) stays source, because compiled coroutines changed
#: how anyio's cancel scopes reach them (a cancellation leaked out of a bot's run in
#: tests/unit/test_faults.py after another test). Modules whose classes are subclassed from
#: source (the clock, the token bucket), or that define runtime-checkable protocols or async
#: generators (the sim venue's async face; its synchronous exchange is compiled), stay source
#: too: mypyc does not support those.
COMPILED_MODULES: tuple[str, ...] = (
    "kasmm.core.after_fill",
    "kasmm.core.band",
    "kasmm.core.fees",
    "kasmm.core.grid",
    "kasmm.core.hanging",
    "kasmm.core.held",
    "kasmm.core.ids",
    "kasmm.core.join",
    "kasmm.core.kpis",
    "kasmm.core.level_sizes",
    "kasmm.core.levels",
    "kasmm.core.markout",
    "kasmm.core.obligations",
    "kasmm.core.pairing",
    "kasmm.core.params",
    "kasmm.core.pnl",
    "kasmm.core.rebalance",
    "kasmm.core.prepared",
    "kasmm.core.quoting",
    "kasmm.core.reconcile",
    "kasmm.core.risk",
    "kasmm.core.rules",
    "kasmm.core.side_ladder",
    "kasmm.core.skew",
    "kasmm.core.types",
    "kasmm.core.venue_time",
    "kasmm.core.volatility",
    "kasmm.bot.account",
    "kasmm.bot.commands",
    "kasmm.bot.engine",
    "kasmm.bot.orders",
    "kasmm.bot.outcomes",
    "kasmm.bot.rebalancer",
    "kasmm.bot.risk_tracker",
    "kasmm.bot.shaping",
    "kasmm.bot.stats",
    "kasmm.bot.timers",
    "kasmm.bot.view",
    "kasmm.venues.sim.as2008",
    "kasmm.venues.sim.exchange",
    "kasmm.venues.sim.grid_ladder",
    "kasmm.venues.sim.matching",
    "kasmm.venues.sim.orders",
    "kasmm.venues.sim.random_walk",
    "kasmm.venues.sim.state",
    "kasmm.venues.sim.tick_book",
    "kasmm.backtest.driver",
    "kasmm.backtest.meter",
)

#: mypyc's group name: the build's shared library is ``kasmm/_native__mypyc.*.so``, inside the
#: package, so it is found wherever ``kasmm`` is.
GROUP_NAME = "kasmm._native"
STAMP_NAME = "_native_stamp.json"
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class NativeStatus:
    """Whether the compiled modules run in this process, and why (for logs and headers)."""

    compiled: bool
    reason: str

    def describe(self) -> str:
        return (
            f"compiled (mypyc): {self.reason}" if self.compiled else f"pure Python: {self.reason}"
        )


def source_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The ``.py`` file of a ``kasmm`` module (a package's ``__init__.py``)."""
    parts = module.split(".")[1:]
    base = package_dir.joinpath(*parts)
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def source_digests(
    modules: Sequence[str] = COMPILED_MODULES, package_dir: Path = PACKAGE_DIR
) -> dict[str, str]:
    """SHA-256 of each module's source, as the build stamp records them."""
    return {
        module: hashlib.sha256(source_path(module, package_dir).read_bytes()).hexdigest()
        for module in modules
    }


def build_tag() -> str:
    """The interpreter a build is for: extension modules only load in the same one."""
    return f"{sys.implementation.cache_tag}-{sys.platform}"


def judge(
    stamp: Mapping[str, object] | None,
    digests: Mapping[str, str],
    environ: Mapping[str, str],
) -> NativeStatus:
    """Whether a build with ``stamp`` may run against sources with ``digests`` (pure)."""
    if environ.get("KASMM_PURE", "") not in ("", "0"):
        return NativeStatus(False, "KASMM_PURE is set")
    if stamp is None:
        return NativeStatus(False, "not built (`make native` compiles the hot path)")
    if stamp.get("tag") != build_tag():
        return NativeStatus(False, f"built for {stamp.get('tag')}, this is {build_tag()}")
    built = stamp.get("modules")
    if not isinstance(built, Mapping) or set(built) != set(digests):
        return NativeStatus(False, "the build compiled another module list: run `make native`")
    changed = sorted(module for module, digest in digests.items() if built[module] != digest)
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        return NativeStatus(False, f"stale: {changed[0]}{more} changed since `make native`")
    return NativeStatus(True, f"{len(digests)} modules")


def read_stamp(package_dir: Path = PACKAGE_DIR) -> dict[str, object] | None:
    try:
        loaded = json.loads((package_dir / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


class SourceFirst(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their ``.py`` files, whatever extension lies beside them."""

    def __init__(self, modules: Sequence[str], package_dir: Path = PACKAGE_DIR) -> None:
        self._modules = frozenset(modules)
        self._package_dir = package_dir

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._modules:
            return None
        source = source_path(fullname, self._package_dir)
        loader = importlib.machinery.SourceFileLoader(fullname, str(source))
        search = [str(source.parent)] if source.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(
            fullname, source, loader=loader, submodule_search_locations=search
        )


class PinnedBuild(importlib.abc.MetaPathFinder):
    """In a process running the compiled modules: refuses to import one more of them once the
    build on disk is no longer the one this process started with.

    A module imported late (``kasmm backtest`` loads its driver on demand) would otherwise come
    from whatever lies on disk then: a rebuild for changed sources, or (removed) the source
    itself, beside the older compiled modules already loaded. Returning ``None`` lets the
    normal finders load the extension module.
    """

    def __init__(
        self,
        modules: Sequence[str],
        started_with: Mapping[str, object],
        read: Callable[[], Mapping[str, object] | None],
    ) -> None:
        self._modules = frozenset(modules)
        self._started_with = started_with
        self._read = read

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in self._modules and self._read() != self._started_with:
            raise ImportError(
                f"{fullname}: the compiled build changed since this process started "
                "(`make native` ran meanwhile); restart the process",
                name=fullname,
            )
        return None


_status: NativeStatus | None = None


def activate(environ: Mapping[str, str] = os.environ) -> NativeStatus:
    """Decide once per process whether the compiled modules run; install the fallback if not."""
    global _status
    if _status is not None:
        return _status
    stamp = read_stamp()
    status = judge(stamp, source_digests(), environ)
    if not status.compiled:
        sys.meta_path.insert(0, SourceFirst(COMPILED_MODULES))
        if environ.get("KASMM_REQUIRE_NATIVE", "") not in ("", "0"):
            raise ImportError(f"KASMM_REQUIRE_NATIVE is set but kasmm runs {status.describe()}")
    else:
        assert stamp is not None
        sys.meta_path.insert(0, PinnedBuild(COMPILED_MODULES, stamp, read_stamp))
    _status = status
    return status


def status() -> NativeStatus:
    """This process's decision (made by ``import kasmm``)."""
    return activate()


def loaded_compiled() -> list[str]:
    """The listed modules imported so far as extension modules (what actually runs)."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(
        name
        for name in COMPILED_MODULES
        if (module := sys.modules.get(name)) is not None
        and str(getattr(module, "__file__", "")).endswith(suffixes)
    )
