"""kasmm's exception hierarchy.

Venue implementations translate whatever their transport raises into these classes exactly once,
at their boundary; the bot and supervisor decide what to do by class alone.
"""

from __future__ import annotations


class KasmmError(Exception):
    """Base of every kasmm error."""


class ConfigError(KasmmError):
    """A profile or settings file is invalid. ``str()`` holds every located message."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("\n".join(messages))


class VenueError(KasmmError):
    """Base of errors coming from a venue."""

    retryable: bool = False


class TransientVenueError(VenueError):
    """Network trouble, timeouts, maintenance: retry with backoff."""

    retryable = True


class RequestTimedOut(TransientVenueError):
    """A request timed out: its outcome is unknown (the order may or may not exist)."""


class RateLimited(TransientVenueError):
    """The venue refused a request for exceeding its rate limit: back off."""


class InsufficientFunds(VenueError):
    """Not enough free balance for the order: resync balances before retrying."""


class OrderRejected(VenueError):
    """The venue rejected an order (tick, lot, min notional, post-only would cross, ...)."""


class PostOnlyWouldCross(OrderRejected):
    """A post-only order would have taken liquidity and was rejected."""


class OrderNotFound(VenueError):
    """The order is unknown to the venue (already filled, cancelled or never placed)."""


class AuthenticationFailed(VenueError):
    """Credentials were refused: stop the profile, retrying cannot help."""


class FatalVenueError(VenueError):
    """Anything else the venue reports that retrying cannot fix."""


class LedgerLost(KasmmError):
    """The ledger file was deleted, replaced or damaged while in use (or is corrupt at start).

    Fatal for every profile that records to it: nothing it does afterwards could be recorded,
    so a halt or a fill would be forgotten on restart. The profile cancels its orders and stops
    without restarting; the supervisor then exits non-zero. ``str()`` names the file.
    """
