"""The systemd units in systemd/: `systemd-analyze verify` is silent, the exposure is <= 2.0.

`systemd-analyze verify` checks that ExecStart= exists, and /opt/kasmm does not exist on a test
machine: each unit is copied into tmp_path with ExecStart='s /opt/kasmm/.venv/bin/kasmm
rewritten to the kasmm script of the running environment (next to sys.executable); nothing
else changes. Without systemd-analyze these tests skip, except under CI ($CI set), where they
fail: CI installs it (.ci/run: `apt-get install systemd`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kasmm.bot import SHUTDOWN_DEADLINE_S

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
INSTALLED_KASMM = "/opt/kasmm/.venv/bin/kasmm"
MAX_EXPOSURE = 2.0
APT_LINE = "apt-get install -y --no-install-recommends systemd"


def analyze() -> str:
    """The systemd-analyze binary, or skip (fail under CI, which must have it)."""
    path = shutil.which("systemd-analyze")
    if path is None:
        reason = f"systemd-analyze is not installed ({APT_LINE})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it (.ci/run)")
        pytest.skip(reason)
    return path


def kasmm_script() -> Path:
    """The kasmm console script of the running environment (next to sys.executable)."""
    script = Path(sys.executable).parent / "kasmm"
    assert script.is_file() and os.access(script, os.X_OK), f"no kasmm script at {script}"
    return script


def unit_copy(tmp_path: Path, name: str, as_name: str | None = None) -> Path:
    """``systemd/NAME`` copied to tmp_path (as ``as_name``) with ExecStart= runnable here."""
    text = (UNITS / name).read_text()
    assert text.count(f"ExecStart={INSTALLED_KASMM} ") == 1, "ExecStart= must run /opt kasmm"
    text = text.replace(f"ExecStart={INSTALLED_KASMM} ", f"ExecStart={kasmm_script()} ")
    out = tmp_path / (as_name or name)
    out.write_text(text)
    return out


def directives(name: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file (every section), values in order."""
    found: dict[str, list[str]] = {}
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key, []).append(value)
    return found


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min)?", value)
    assert match, value
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


UNIT_CASES = [
    ("kasmm.service", "kasmm.service"),
    ("kasmm@.service", "kasmm@.service"),
    ("kasmm@.service", "kasmm@0-4.service"),  # an instance: %I expands to 0/4
]


@pytest.mark.parametrize(("name", "as_name"), UNIT_CASES)
def test_systemd_analyze_verify_prints_nothing(tmp_path: Path, name: str, as_name: str) -> None:
    tool = analyze()
    unit = unit_copy(tmp_path, name, as_name)
    result = subprocess.run(
        [tool, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), (
        f"systemd-analyze verify {as_name}:\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize(("name", "as_name"), UNIT_CASES)
def test_systemd_analyze_security_exposure_is_ok(tmp_path: Path, name: str, as_name: str) -> None:
    tool = analyze()
    unit = unit_copy(tmp_path, name, as_name)
    result = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"},
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, f"no exposure level in:\n{output}"
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{output}"


# --- what the units promise (no systemd needed) -----------------------------------------------


@pytest.mark.parametrize("name", ["kasmm.service", "kasmm@.service"])
def test_units_speak_notify_and_outlast_the_cancel_deadline(name: str) -> None:
    d = directives(name)

    def one(key: str) -> str:
        assert len(d.get(key, [])) == 1, f"{name}: expected exactly one {key}="
        return d[key][0]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("KillSignal") == "SIGTERM"
    assert one("Restart") == "on-failure"
    assert one("WatchdogSec") == "30"
    # Every profile cancels its orders within SHUTDOWN_DEADLINE_S, in parallel; systemd must
    # not SIGKILL before that (plus the ledger's last writes).
    assert seconds(one("TimeoutStopSec")) >= 2 * SHUTDOWN_DEADLINE_S
    assert one("DynamicUser") == "yes"
    assert one("StateDirectory") == "kasmm"
    assert one("ConfigurationDirectory") == "kasmm"
    assert one("UMask") == "0077"
    start = one("ExecStart")
    assert start.startswith(f"{INSTALLED_KASMM} --log-format json supervise /etc/kasmm/profiles")
    if "@" in name:
        assert start.endswith(" --shard %I")
        assert one("Conflicts") == "kasmm.service"
    else:
        assert "--shard" not in start


def test_the_units_differ_only_where_the_template_must() -> None:
    """The sandbox and the lifecycle are the same in both units (they are edited together)."""
    plain, template = directives("kasmm.service"), directives("kasmm@.service")
    differing = {k for k in plain.keys() | template.keys() if plain.get(k) != template.get(k)}
    assert differing == {"Description", "ExecStart", "Conflicts"}


# --- MemoryDenyWriteExecute=yes ---------------------------------------------------------------

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def test_kasmm_runs_with_memory_deny_write_execute(tmp_path: Path) -> None:
    """What MemoryDenyWriteExecute=yes enforces, through the kernel's PR_SET_MDWE (Linux 6.3+):
    every library kasmm imports, and a short supervisor run, must not need W+X memory."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    sim = textwrap.dedent(
        """\
        name: mdwe
        venue: {type: sim, market: {book_interval_s: 0.05}, seed: 1}
        symbol: KAS/USDT
        modes:
          aggressive: {spread_bps: 20, size: 1000, levels: 2}
          passive: {spread_bps: 20, size: 1000, levels: 2}
        """
    )
    (profiles / "mdwe.yaml").write_text(sim)
    code = textwrap.dedent(
        f"""\
        import ctypes, errno, mmap, sys
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
            sys.exit(77 if ctypes.get_errno() == errno.EINVAL else 1)
        try:
            mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            sys.exit("W+X memory was not refused")
        except OSError:
            pass
        import ccxt, ccxt.async_support, ccxt.pro, orjson, pydantic_core, watchfiles, aiohttp
        import ssl; ssl.create_default_context()
        from kasmm.cli import main
        sys.exit(main(["--log-format", "json", "supervise", {str(profiles)!r},
                       "--duration", "1.5", "--metrics-addr", "", "--no-watch",
                       "--state-dir", {str(tmp_path / "state")!r}]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    if result.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"event":"bot_started"' in result.stdout + result.stderr
