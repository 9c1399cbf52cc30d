"""Compile kasmm's hot path with mypyc, in place: ``make native``.

The modules listed in ``kasmm.native.COMPILED_MODULES`` become extension modules beside their
``.py`` files, and ``kasmm/_native_stamp.json`` records the SHA-256 of each source they were built
from; ``import kasmm`` runs them only while every source still matches (``kasmm/native.py``).
The source stays the reference: without a C compiler nothing is built and kasmm runs as before.

    .venv/bin/python scripts/build_native.py [--clean]

Exit status: 0 built (or cleaned), 3 no C compiler or no mypyc (nothing changed), 1 the build
failed (the previous build was removed, so the source runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NO_TOOLCHAIN = 3


def _compiler() -> str | None:
    """The C compiler setuptools would run (``$CC``, else the interpreter's), if it exists."""
    configured = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    argv = shlex.split(configured)
    return shutil.which(argv[0]) if argv else None


@contextlib.contextmanager
def _redirected(fd: int) -> Iterator[None]:
    """Standard output and error of this process and its children go to ``fd``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for copy in saved:
            os.close(copy)


def _remove_build(package: Path, stamp: Path) -> int:
    """Delete the stamp first (so a half-removed build is never trusted), then every extension."""
    stamp.unlink(missing_ok=True)
    removed = 0
    for extension in package.rglob("*.so"):
        extension.unlink()
        removed += 1
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="remove the build; run the source")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from kasmm.native import (
        COMPILED_MODULES,
        GROUP_NAME,
        STAMP_NAME,
        build_tag,
        source_digests,
        source_path,
    )

    package = REPO / "kasmm"
    stamp = package / STAMP_NAME
    if args.clean:
        print(f"native: removed {_remove_build(package, stamp)} extension modules; source runs")
        return 0
    compiler = _compiler()
    if compiler is None:
        print(
            "native: no C compiler found ($CC or cc): nothing built, kasmm runs its Python source"
        )
        return NO_TOOLCHAIN
    try:
        from mypyc.build import mypycify
        from setuptools import setup  # type: ignore[import-untyped]
    except ImportError as error:
        print(f"native: {error.name} is not installed (`make native` installs the dev tools)")
        return NO_TOOLCHAIN

    _remove_build(package, stamp)
    digests = source_digests()
    started = time.monotonic()
    os.chdir(REPO)
    paths = [str(source_path(module).relative_to(REPO)) for module in COMPILED_MODULES]
    log_path = REPO / "build" / "native" / "build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # mypyc, setuptools and the compiler talk a lot: their output goes to the log, shown
        # only when the build fails (at the descriptor level, since the compiler is a child).
        with log_path.open("w") as log, _redirected(log.fileno()):
            setup(
                name="kasmm-native",
                ext_modules=mypycify(
                    paths, opt_level="3", group_name=GROUP_NAME, target_dir="build/native"
                ),
                script_args=["build_ext", "--inplace", "--build-temp", "build/native/tmp"],
            )
    except (SystemExit, Exception) as error:  # setuptools reports a failed build as SystemExit
        _remove_build(package, stamp)
        tail = log_path.read_text().splitlines()[-20:]
        print("\n".join(tail))
        print(f"native: build failed ({error}); see {log_path}. kasmm runs its Python source")
        return 1
    if source_digests() != digests:
        _remove_build(package, stamp)
        print("native: a source changed during the build; removed it, run it again")
        return 1
    stamp.write_text(json.dumps({"tag": build_tag(), "modules": digests}, indent=1) + "\n")
    elapsed = time.monotonic() - started
    print(f"native: compiled {len(paths)} modules with {compiler} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
