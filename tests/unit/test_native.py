"""The compiled hot path runs only when its build matches the source (kasmm/native.py)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kasmm import native
from kasmm.native import (
    COMPILED_MODULES,
    PinnedBuild,
    SourceFirst,
    build_tag,
    judge,
    source_digests,
)

REPO = Path(__file__).resolve().parents[2]
DIGESTS = {"kasmm.core.quoting": "aa", "kasmm.core.reconcile": "bb"}


def _stamp(**changes: object) -> dict[str, object]:
    stamp: dict[str, object] = {"tag": build_tag(), "modules": dict(DIGESTS)}
    stamp.update(changes)
    return stamp


def test_a_matching_build_runs_compiled() -> None:
    status = judge(_stamp(), DIGESTS, {})
    assert status.compiled
    assert status.describe() == "compiled (mypyc): 2 modules"


@pytest.mark.parametrize(
    ("stamp", "environ", "reason"),
    [
        (_stamp(), {"KASMM_PURE": "1"}, "KASMM_PURE is set"),
        (None, {}, "not built"),
        (_stamp(tag="cpython-312-linux"), {}, "built for cpython-312-linux"),
        (_stamp(modules={"kasmm.core.quoting": "aa"}), {}, "another module list"),
        (
            _stamp(modules={"kasmm.core.quoting": "aa", "kasmm.core.reconcile": "old"}),
            {},
            "stale: kasmm.core.reconcile changed",
        ),
    ],
)
def test_anything_but_a_matching_build_runs_the_source(
    stamp: dict[str, object] | None, environ: dict[str, str], reason: str
) -> None:
    status = judge(stamp, DIGESTS, environ)
    assert not status.compiled
    assert reason in status.describe()
    assert status.describe().startswith("pure Python: ")


def test_kasmm_pure_0_does_not_force_the_source() -> None:
    assert judge(_stamp(), DIGESTS, {"KASMM_PURE": "0"}).compiled


def test_the_stamp_covers_every_listed_module_and_each_source_exists() -> None:
    digests = source_digests()
    assert set(digests) == set(COMPILED_MODULES)
    assert all(len(digest) == 64 for digest in digests.values())


def test_the_fallback_finder_loads_the_source_beside_a_stale_extension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension module wins over a source of the same name unless the finder steps in."""
    package = tmp_path / "nativepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hot.py").write_text("ANSWER = 'source'\n")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (package / f"hot{suffix}").write_bytes(b"not an extension module: an old build")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("nativepkg", "nativepkg.hot"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    with pytest.raises(ImportError):
        importlib.import_module("nativepkg.hot")  # the import system picked the extension

    monkeypatch.delitem(sys.modules, "nativepkg.hot", raising=False)
    finder = SourceFirst(["nativepkg.hot"], package_dir=package)
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    module = importlib.import_module("nativepkg.hot")
    assert module.ANSWER == "source"
    assert module.__file__ == str(package / "hot.py")


def test_this_process_runs_what_its_status_says() -> None:
    """Compiled: every listed module imported so far is an extension; pure: none is."""
    importlib.import_module("kasmm.backtest.driver")  # pulls in most of the list
    loaded = native.loaded_compiled()
    imported = [name for name in COMPILED_MODULES if name in sys.modules]
    assert len(imported) > 20
    if native.status().compiled:
        assert loaded == sorted(imported)
    else:
        assert loaded == []


def test_require_native_fails_the_import_when_the_source_would_run(tmp_path: Path) -> None:
    env = {**os.environ, "KASMM_PURE": "1", "KASMM_REQUIRE_NATIVE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", "import kasmm"], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 1
    assert "KASMM_REQUIRE_NATIVE is set but kasmm runs pure Python: KASMM_PURE is set" in run.stderr


def test_the_build_without_a_c_compiler_changes_nothing_and_says_so() -> None:
    stamp = REPO / "kasmm" / native.STAMP_NAME
    before = stamp.read_bytes() if stamp.exists() else None
    env = {**os.environ, "CC": "/nonexistent/cc"}
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_native.py")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 3
    assert "no C compiler found" in run.stdout
    assert (stamp.read_bytes() if stamp.exists() else None) == before


@pytest.mark.parametrize(
    ("profile", "market", "horizon"),
    [("kas-usdt-sim-as.yaml", "random_walk", "90"), ("kas-usdt-sim.yaml", "as2008", "2")],
)
def test_this_process_and_the_python_source_backtest_identically(
    tmp_path: Path, profile: str, market: str, horizon: str
) -> None:
    """In the compiled test run (make test): compiled against source, result for result."""

    def backtest(name: str, extra_env: dict[str, str]) -> dict[str, object]:
        out = tmp_path / f"{name}.json"
        env = {**os.environ, **extra_env}
        command = [sys.executable, "-m", "kasmm", "backtest", str(REPO / "profiles" / profile)]
        command += ["--market", market, "--paths", "3", "--horizon", horizon, "--workers", "1"]
        subprocess.run(
            [*command, "--json", str(out)],
            env=env,
            check=True,
            capture_output=True,
        )
        document: dict[str, object] = json.loads(out.read_text())
        timing = document.pop("timing")
        assert isinstance(timing, dict) and timing["decisions"] > 100
        document["decisions"] = timing["decisions"]
        return document

    here = backtest("here", {})
    source = backtest("source", {"KASMM_PURE": "1", "KASMM_REQUIRE_NATIVE": "0"})
    assert here == source


def test_a_compiled_process_refuses_a_late_import_once_the_build_on_disk_changed() -> None:
    """A rebuild (or a removed build) under a running process: a module it imports late must not
    come from another build, or from the source beside the compiled modules already loaded."""
    started = _stamp()
    on_disk: list[dict[str, object] | None] = [started]
    finder = PinnedBuild(["kasmm.core.quoting"], started, lambda: on_disk[0])

    assert finder.find_spec("kasmm.core.quoting", None) is None  # same build: load it as usual
    assert finder.find_spec("kasmm.cli", None) is None  # not compiled: never its business
    on_disk[0] = _stamp(modules={"kasmm.core.quoting": "new", "kasmm.core.reconcile": "bb"})
    with pytest.raises(ImportError, match=r"kasmm\.core\.quoting: the compiled build changed"):
        finder.find_spec("kasmm.core.quoting", None)
    on_disk[0] = None  # `build_native.py --clean`, or a rebuild under way
    with pytest.raises(ImportError, match="restart the process"):
        finder.find_spec("kasmm.core.quoting", None)
    assert finder.find_spec("kasmm.cli", None) is None
