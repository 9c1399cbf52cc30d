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


REENTRY = textwrap.dedent(
    """
    import os, signal
    from kasmm.daemon import signals
    from kasmm.obs.logs import configure_logging

    configure_logging("json", "info")
    signals.install_process_signals()
    os.kill(os.getpid(), signal.SIGTERM)  # the clean stop, requested
    # The forced exit, interrupted by one more stop signal before it could end the process
    # (a shard gets its parent's forwarded signal and the parent-death one close together).
    real_write = os.write

    def write_once_interrupted(fd, data):
        os.write = real_write
        written = real_write(fd, data)
        os.kill(os.getpid(), signal.SIGTERM)  # lands before os._exit
        return written

    os.write = write_once_interrupted
    os.kill(os.getpid(), signal.SIGTERM)
    signal.pause()
    """
)


def test_a_signal_during_the_forced_exit_does_not_log_it_twice() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", REENTRY], capture_output=True, text=True, timeout=20, check=False
    )
    assert proc.returncode == 143
    assert [json.loads(x)["event"] for x in proc.stderr.splitlines() if "forced_exit" in x] == [
        "forced_exit"
    ]
