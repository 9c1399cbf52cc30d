"""Sending one message to one Apprise URL: synchronous, so it runs in a worker thread.

Apprise (https://github.com/caronc/apprise) speaks to ~100 services (Telegram, Slack, Discord,
e-mail, ntfy, Pushover, Matrix, plain JSON webhooks, ...) through one call, ``notify``, which
blocks on the network. :class:`AppriseSender` is that call behind the :class:`Sender` protocol:
the notifier runs it with ``anyio.to_thread.run_sync`` and never on the event loop; tests pass
their own sender.

A sender returns ``None`` when the service accepted the message, else why not, already
redacted (:mod:`kasmm.alerts.redact`): Apprise's own warning, which can quote the URL.
"""

from __future__ import annotations

import threading
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from kasmm.alerts.redact import redact, register_url
from kasmm.config.notify import Level

if TYPE_CHECKING:
    import apprise

__all__ = ["AppriseSender", "Sender", "load_apprise"]

_LOAD_LOCK = threading.Lock()
_loaded = False


def load_apprise() -> ModuleType:
    """The ``apprise`` module with its plugins loaded.

    Imported on first use: Apprise loads ~190 plugins (~0.3 s), which only a supervisor with a
    ``_notify.yaml`` should pay for. Loading them imports ``imghdr`` (its PGP support), which
    Python 3.11 flags as deprecated; that warning is Apprise's, not ours, so it is silenced for
    the one load (the tests turn warnings into errors).
    """
    global _loaded
    import apprise

    with _LOAD_LOCK:
        if not _loaded:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                apprise.Apprise.instantiate("json://localhost")  # loads every plugin
            _loaded = True
    return apprise


class Sender(Protocol):
    """Delivers one message to one URL, blocking; returns ``None`` or why it failed."""

    def __call__(
        self, url: str, title: str, body: str, level: Level, timeout_s: float
    ) -> str | None: ...


class AppriseSender:
    """A :class:`Sender` over Apprise; one ``Apprise`` object (and connection pool) per URL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._services: dict[str, tuple[apprise.Apprise | None, threading.Lock]] = {}

    def __call__(
        self, url: str, title: str, body: str, level: Level, timeout_s: float
    ) -> str | None:
        register_url(url)  # before Apprise can log it
        service, lock = self._service(url)
        if service is None:
            return "not a URL Apprise supports"
        apprise = load_apprise()
        kinds = {
            "info": apprise.NotifyType.INFO,
            "warning": apprise.NotifyType.WARNING,
            "critical": apprise.NotifyType.FAILURE,
        }
        # One message at a time per service: Apprise's throttle and sessions are per object.
        with lock:
            result = service.notify(
                body=body, title=title, notify_type=kinds[level], timeout=timeout_s
            )
            try:
                if result:
                    return None
                problems = [e.message for e in result.logs() if e.level != "INFO"]
                why = problems[-1] if problems else f"apprise status {result.status.name}"
                return redact(why)
            finally:
                result.close()

    def _service(self, url: str) -> tuple[apprise.Apprise | None, threading.Lock]:
        with self._lock:
            found = self._services.get(url)
            if found is None:
                apprise = load_apprise()
                plugin = apprise.Apprise.instantiate(url)
                service = None if plugin is None else apprise.Apprise(plugin)
                found = (service, threading.Lock())
                self._services[url] = found
            return found
