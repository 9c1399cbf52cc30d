"""A second stop signal ends the process even while the main thread is writing a log line.

structlog's PrintLogger holds a non-reentrant lock while it writes; the forced exit used to log
through it from the signal handler, so a second SIGTERM that landed mid-line waited for that
lock forever (a shard of ``--processes`` once outlived a forced stop by 30 s and more).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

from kasmm.daemon import exit_codes

SCRIPT = textwrap.dedent(
    """
    import os, signal, structlog
    from kasmm.daemon.signals import install_process_signals
    from kasmm.obs.logs import configure_logging

    configure_logging("json", "info")
    install_process_signals()
    # The lock the logger holds while it writes a line, held by the main thread right now.
    lock = structlog.get_config()["logger_factory"]()._lock
    with lock:
        os.kill(os.getpid(), signal.SIGTERM)  # the clean stop, requested
        os.kill(os.getpid(), signal.SIGTERM)  # the forced one, in the middle of a "write"
        signal.pause()  # never returns when the forced exit works
    """
)


def test_a_forced_exit_does_not_wait_for_the_loggers_lock() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=20, check=False
    )
    assert proc.returncode == exit_codes.forced_exit_code(signal.SIGTERM) == 143
    (line,) = [json.loads(x) for x in proc.stderr.splitlines() if "forced_exit" in x]
    assert line["event"] == "forced_exit" and line["exit_code"] == 143
    assert line["signal"] == "SIGTERM" and line["level"] == "error" and line["timestamp"]
