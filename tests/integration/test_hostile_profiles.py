"""Hostile profile files dropped into a running supervisor's directory, one by one.

Every file of ``tests/hostile/`` plus the cases generated here (symlinks, binary and oversized
files, FIFOs, a file that vanishes between listing and reading, ...) is written into the watched
directory of a running in-process supervisor. Each must be rejected with a located error
(``path:line:col: ...``); the supervisor must neither crash nor stall (its event loop keeps
answering, the running profile keeps deciding), and the profile already running there must be
untouched: same bot and venue, not one order action caused by the drops.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from kasmm.supervisor import Supervisor, supervise
from tests.integration.test_supervisor import VenueLog, profile_yaml, write
from tests.support import eventually

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"
RUNNER = "runner"
#: Environment of the supervisor: the hostile ccxt profiles reference these (and unset ones).
ENV = {"HOSTILE_KEY": "hostile-key-value", "HOSTILE_SECRET": "hostile-secret-value"}

#: Expected message fragment of the first issue of every file in ``tests/hostile/``.
EXPECTED: dict[str, str] = {
    "bomb-billion-laughs.yaml": "YAML aliases (*name) are not supported",
    "bomb-deep-mapping.yaml": "nesting deeper than 32 levels",
    "bomb-deep-nesting.yaml": "nesting deeper than 32 levels",
    "bomb-merge-key.yaml": "YAML aliases (*name) are not supported",
    "empty-file.yaml": "empty file",
    "list-duplicate-names.yaml": "Input should be greater than 0",
    "list-empty.yaml": "empty list",
    "missing-required.yaml": "required field is missing",
    "modes-inverted.yaml": "must be at least the aggressive spread",
    "name-invalid-chars.yaml": "must be 1-64 letters",
    "name-too-long.yaml": "must be 1-64 letters",
    "num-huge-int-levels.yaml": "less than or equal to 20",
    "num-huge-spread.yaml": "less than or equal to 10000",
    "num-inf-size.yaml": "finite number",
    "num-long-number.yaml": "number longer than 100 characters",
    "num-nan-spread.yaml": "finite number",
    "num-nan-string-balance.yaml": "finite number",
    "num-negative-balance.yaml": "greater than or equal to 0",
    "num-negative-seed.yaml": "greater than or equal to 0",
    "num-negative-size.yaml": "greater than 0",
    "num-overflow-size.yaml": "finite number",
    "num-share-above-one.yaml": "less than or equal to 1",
    "num-zero-tick.yaml": "greater than 0",
    "only-comments.yaml": "empty file",
    "schedule-bad-cron.yaml": "invalid cron expression",
    "schedule-bad-timezone.yaml": "unknown time zone",
    "syntax-bad-indent.yaml": "YAML syntax error",
    "syntax-block-in-flow.yaml": "YAML syntax error",
    "syntax-duplicate-key.yaml": 'duplicate key "symbol"',
    "syntax-mapping-in-scalar.yaml": "YAML syntax error",
    "syntax-stray-document.yaml": "YAML syntax error",
    "syntax-tab-indent.yaml": "YAML does not allow tabs",
    "syntax-unclosed-flow.yaml": "YAML syntax error",
    "syntax-unterminated-quote.yaml": "YAML syntax error",
    "tag-binary.yaml": "is not supported",
    "tag-custom.yaml": "is not supported",
    "tag-python-object.yaml": "is not supported",
    "type-enabled-string.yaml": "valid boolean",
    "type-kill-switch-list.yaml": "valid dictionary",
    "type-levels-string.yaml": "valid integer",
    "type-list-of-scalars.yaml": "each list entry must be a profile mapping",
    "type-modes-list.yaml": "valid dictionary",
    "type-name-mapping.yaml": "valid string",
    "type-symbol-number.yaml": "valid string",
    "type-top-level-number.yaml": "expected a profile mapping or a list",
    "type-top-level-scalar.yaml": "expected a profile mapping or a list",
    "type-unknown-key.yaml": "unknown key 'launch_missiles'",
    "type-venue-string.yaml": "valid dictionary",
    "venue-bad-rest-url.yaml": "must be an http:// or https:// URL",
    "venue-literal-secret.yaml": "never inlined",
    "venue-missing-credentials.yaml": "KASMM_HOSTILE_UNSET_KEY is not set",
    "venue-no-credentials.yaml": "required field is missing",
    "venue-unknown-exchange.yaml": "unsupported exchange 'binance'",
    "venue-unknown-market-model.yaml": "unknown model",
    "venue-unknown-type.yaml": "unknown type",
}

_LOCATED = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): ")


@dataclass(frozen=True)
class Case:
    """One hostile file: its name in the directory, how to make it, what the error says."""

    name: str
    make: Callable[[Path], None]
    expect: str


def _text(text: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_text(text)

    return make


def _bytes(data: bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(data)

    return make


def _copy(source: Path) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        shutil.copyfile(source, path)

    return make


def _symlink(target: Callable[[Path], Path]) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target(path))


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()


VALID_TAIL = (
    "venue: {type: sim}\nsymbol: KAS/USDT\n"
    "modes: {aggressive: {spread_bps: 10, size: 100}, passive: {spread_bps: 20, size: 100}}\n"
)


def generated_cases(outside: Path) -> list[Case]:
    """The cases that cannot be plain files in git."""
    secret_file = outside / "secret.yaml"
    secret_file.write_text("name: stolen\n" + VALID_TAIL)
    return [
        Case("symlink-outside.yaml", _symlink(lambda _: secret_file), "outside the directory"),
        Case("symlink-etc-passwd.yaml", _symlink(lambda _: Path("/etc/passwd")), "outside"),
        Case("symlink-dangling.yaml", _symlink(lambda p: p.with_name("gone.yaml")), "not found"),
        Case("binary-png.yaml", _bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "binary file"),
        Case("binary-random.yaml", _bytes(bytes(range(256)) * 64), "binary file"),
        Case(
            "binary-utf16.yaml",
            _bytes(("name: utf16\n" + VALID_TAIL).encode("utf-16")),
            "binary file",
        ),
        Case("binary-latin1.yaml", _bytes(b"name: caf\xe9\n" + VALID_TAIL.encode()), "UTF-8"),
        Case("huge-file.yaml", _text("# padding\n" * 120_000), "larger than 1048576 bytes"),
        Case(
            "huge-node-count.yaml",
            _text("\n".join(f"- {i}" for i in range(25_000))),
            "more than 20000 YAML nodes",
        ),
        Case("huge-flow-nesting.yaml", _text("[" * 5000 + "]" * 5000), "nesting deeper"),
        Case("huge-string-name.yaml", _text("name: " + "x" * 900_000 + "\n" + VALID_TAIL), "1-64"),
        Case("fifo.yaml", _fifo, "not a regular file"),
        Case("directory.yaml", _directory, "not a regular file"),
        Case(
            "control-characters.yaml",
            _text('name: "\x1b[31mred\x1b[0m"\n' + VALID_TAIL),
            "invalid character",
        ),
        Case(
            "bidi-override.yaml",
            _text('name: "evil\u202etxt.yaml"\n' + VALID_TAIL),
            "must be 1-64 letters",
        ),
        Case(
            "crlf-wrong-type.yaml",
            _bytes(("name: crlf\r\n" + VALID_TAIL + "mode: turbo\r\n").encode()),
            "Input should be 'aggressive' or 'passive'",
        ),
        Case("_accounts.yaml", _text("accounts: 5\n"), "valid dictionary"),
        Case(
            "zz-duplicate-of-runner.yaml",
            _text(f"name: {RUNNER}\n" + VALID_TAIL.replace("size: 100}}", "size: -1}}")),
            "greater than 0",
        ),
        Case(
            "yml-suffix.yml",
            _text("name: yml-suffix\n" + VALID_TAIL.replace("type: sim", "type: 7")),
            "unknown type",
        ),
    ]


async def _probe(lags: list[float]) -> None:
    """Event-loop lag probe (a stalled loop shows here)."""
    while True:
        t0 = time.perf_counter()
        await anyio.sleep(0.01)
        lags.append(time.perf_counter() - t0 - 0.01)


@pytest.mark.anyio
async def test_hostile_profiles_are_rejected_one_by_one_without_touching_the_runner(
    tmp_path: Path,
) -> None:
    static = sorted(p for p in HOSTILE.iterdir() if p.suffix in (".yaml", ".yml"))
    unknown = sorted(p.name for p in static if p.name not in EXPECTED)
    assert not unknown, f"add the expected message of {unknown} to EXPECTED"
    outside = tmp_path / "outside"
    outside.mkdir()
    cases = [Case(p.name, _copy(p), EXPECTED[p.name]) for p in static]
    cases += generated_cases(outside)
    assert len(cases) >= 50

    directory = tmp_path / "profiles"
    directory.mkdir()
    write(directory, RUNNER, profile_yaml(RUNNER))
    log = VenueLog()
    sup = Supervisor(directory, venue_factory=log.factory, env=ENV)
    lags: list[float] = []
    rejected: list[str] = []
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda *, task_status: supervise(
                directory, supervisor=sup, control_addr=None, task_status=task_status
            )
        )
        tg.start_soon(_probe, lags)
        await eventually(lambda: log.last(RUNNER).open_order_count == 4)
        await anyio.sleep(0.3)  # the watcher is up; the runner's first round is done
        venue = log.last(RUNNER)
        slot = sup.slots[RUNNER]
        bot = slot.bot
        assert bot is not None
        before = (venue.stats.places, venue.stats.cancels)

        for case in cases:
            path = directory / case.name
            case.make(path)

            def listed(path: Path = path) -> bool:
                return any(i.path == path for i in sup.issues)

            await eventually(listed)
            issues = [str(i) for i in sup.issues if i.path == path]
            for issue in issues:
                where = _LOCATED.match(issue)
                assert where is not None and where.group("path") == str(path), issue
                assert int(where.group("line")) >= 1 and int(where.group("col")) >= 1, issue
            text = "\n".join(issues)
            assert case.expect in text, f"{case.name}: {text}"
            assert "\x1b" not in text and "\u202e" not in text, text  # printable only
            assert "hunter2" not in text  # a literal secret is never echoed
            # Nothing new runs; the runner is the same bot on the same venue, untouched.
            assert sorted(sup.slots) == [RUNNER], case.name
            assert sup.slots[RUNNER] is slot and slot.bot is bot, case.name
            assert len(log.venues[RUNNER]) == 1, case.name
            assert (venue.stats.places, venue.stats.cancels) == before, case.name
            rejected.append(case.name)
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
            await eventually(lambda: not listed())

        # A file listed, then gone before it is read (removed mid-reload).
        ghost = directory / "ghost.yaml"
        real_listdir = os.listdir

        def listdir_with_ghost(target: str | os.PathLike[str]) -> list[str]:
            names = real_listdir(target)
            return [*names, ghost.name] if Path(target) == directory else names

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "listdir", listdir_with_ghost)  # the loader's listing
            await sup.reload()  # as SIGHUP does
        ghost_issues = [str(i) for i in sup.issues if i.path == ghost]
        assert ghost_issues and "removed while loading" in ghost_issues[0]
        assert ghost_issues[0].startswith(f"{ghost}:1:1: ")
        rejected.append(ghost.name)

        decisions = bot.stats.decisions
        await anyio.sleep(0.5)
        assert bot.stats.decisions > decisions, "the runner stopped deciding"
        assert bot.state.value == "quoting"
        assert (venue.stats.places, venue.stats.cancels) == before
        assert venue.open_order_count == 4
        assert max(lags) < 1.0, f"event loop stalled for {max(lags):.2f} s"
        tg.cancel_scope.cancel()
    assert len(rejected) >= 50
    assert sup.exit_code == 0
    assert venue.open_order_count == 0  # stopped cleanly afterwards


@pytest.mark.anyio
async def test_a_valid_copy_declaring_the_running_name_does_not_take_it_over(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "profiles"
    directory.mkdir()
    write(directory, RUNNER, profile_yaml(RUNNER))
    log = VenueLog()
    sup = Supervisor(directory, venue_factory=log.factory, env=ENV)
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda *, task_status: supervise(
                directory, supervisor=sup, control_addr=None, task_status=task_status
            )
        )
        await eventually(lambda: log.last(RUNNER).open_order_count == 4)
        await anyio.sleep(0.3)
        venue = log.last(RUNNER)
        before = (venue.stats.places, venue.stats.cancels)
        # Sorts before runner.yaml: a copy someone forgot to rename, or a hostile takeover.
        hijack = directory / "00-copy.yaml"
        hijack.write_text(profile_yaml(RUNNER, spread=90))
        with anyio.move_on_after(3.0):
            while not any(i.path == hijack for i in sup.issues):
                await anyio.sleep(0.02)
        await anyio.sleep(0.5)  # a takeover would have restarted the runner by now
        issues = [str(i) for i in sup.issues]
        venues_built = len(log.venues[RUNNER])
        actions = (venue.stats.places, venue.stats.cancels)
        tg.cancel_scope.cancel()
    assert venues_built == 1 and actions == before, "the running profile was replaced"
    duplicate = re.compile(rf"^{re.escape(str(hijack))}:\d+:\d+: {RUNNER}: name: duplicate")
    assert any(duplicate.match(i) for i in issues), issues


@pytest.mark.anyio
async def test_a_symlink_loop_is_rejected_and_the_supervisor_survives(tmp_path: Path) -> None:
    directory = tmp_path / "profiles"
    directory.mkdir()
    write(directory, RUNNER, profile_yaml(RUNNER))
    log = VenueLog()
    sup = Supervisor(directory, venue_factory=log.factory, env=ENV)
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda *, task_status: supervise(
                directory, supervisor=sup, control_addr=None, task_status=task_status
            )
        )
        await eventually(lambda: log.last(RUNNER).open_order_count == 4)
        await anyio.sleep(0.3)
        venue = log.last(RUNNER)
        before = (venue.stats.places, venue.stats.cancels)
        loop = directory / "symlink-loop.yaml"
        loop.symlink_to(loop)
        await eventually(lambda: any(i.path == loop for i in sup.issues), within_s=5.0)
        issue = next(str(i) for i in sup.issues if i.path == loop)
        assert issue.startswith(f"{loop}:1:1: ") and "cannot open file" in issue
        loop.unlink()
        await eventually(lambda: not any(i.path == loop for i in sup.issues), within_s=5.0)
        assert len(log.venues[RUNNER]) == 1
        assert (venue.stats.places, venue.stats.cancels) == before
        tg.cancel_scope.cancel()
    assert sup.exit_code == 0
