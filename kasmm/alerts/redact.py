"""Keep notification URLs out of every log line.

An Apprise URL *is* a secret: a Telegram bot token, a Slack or Discord webhook token, an SMTP
password, all sit inside it. kasmm's own log lines name a target and its service (the URL's
scheme), never the URL. Apprise itself logs URLs (``Unparseable Telegram URL tgram://...``) and
the request URLs it builds from them (``api.telegram.org/bot<TOKEN>/...``), so its logger gets
:class:`UrlRedactor`, a logging filter that replaces every registered URL, and every piece of
one long enough to be a token, with ``**redacted**`` before a record is formatted.

URLs are registered (:func:`register_url`) before Apprise ever sees them.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote, unquote, urlsplit

from kasmm.obs.logs import REDACTED

__all__ = ["UrlRedactor", "redact", "register_secret", "register_url", "service_of"]

#: Pieces of a URL between these characters are redacted when at least _MIN_PIECE long.
_SPLIT = re.compile(r"[/:@?&=#,;+\s]+")
_MIN_PIECE = 4
_LOCK = threading.Lock()
#: Longest first, so a URL is replaced whole before its pieces are.
_SECRETS: tuple[str, ...] = ()


def _pieces(url: str) -> set[str]:
    scheme = service_of(url)
    out = {url}
    for text in (url, unquote(url)):
        out.add(text)
        out.update(p for p in _SPLIT.split(text) if len(p) >= _MIN_PIECE and p != scheme)
    return out


def register_url(url: str) -> None:
    """Never let ``url`` (or a token-sized piece of it) reach a log line from Apprise or kasmm.

    Called from the loader's thread and the event loop alike: the set is replaced whole under a
    lock, and readers take the current tuple without one.
    """
    global _SECRETS
    with _LOCK:
        known = set(_SECRETS) | _pieces(url)
        _SECRETS = tuple(sorted(known, key=len, reverse=True))
    _install()


def register_secret(value: str) -> None:
    """Never let ``value`` (a withdrawal key, its secret) reach a notification or a log line
    that goes through :func:`redact`: the value whole and percent-encoded (as it sits in a
    request URL an exchange's error message may quote). Values shorter than four characters
    are not registered (they would redact ordinary words)."""
    global _SECRETS
    if len(value) < _MIN_PIECE:
        return
    with _LOCK:
        known = set(_SECRETS) | {value, quote(value, safe="")}
        _SECRETS = tuple(sorted(known, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every registered URL and piece of one replaced."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def service_of(url: str) -> str:
    """The URL's scheme (``tgram``, ``ntfys``, ``json``): the one part safe to log."""
    try:
        return urlsplit(url).scheme.lower() or "unknown"
    except ValueError:
        return "unknown"


class UrlRedactor(logging.Filter):
    """A filter for Apprise's logger: formats the record, then redacts it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: keep the bare template
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info is not None:
            # A traceback may quote the URL (requests puts it in its exceptions): its type only.
            exc = record.exc_info[1]
            record.msg = f"{record.msg} ({type(exc).__name__})"
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = UrlRedactor()


def _install() -> None:
    """Attach the filter to Apprise's logger (once; Apprise logs through that one logger)."""
    logger = logging.getLogger("apprise")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
