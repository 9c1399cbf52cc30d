"""One line for what made a command fail, for the commands that print it (``run``, ``record``)."""

from __future__ import annotations

from kasmm.errors import KasmmError

__all__ = ["failure_reason"]


def failure_reason(exc: BaseException) -> str:
    """What ended a command, on one line: the failures inside (exception) groups, each as its
    message (kasmm's own errors) or ``Type: message``, distinct ones joined by ``; ``."""
    if isinstance(exc, BaseExceptionGroup):
        reasons = [failure_reason(inner) for inner in exc.exceptions]
        return "; ".join(dict.fromkeys(reasons))
    text = " ".join(str(exc).split())
    if isinstance(exc, KasmmError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
