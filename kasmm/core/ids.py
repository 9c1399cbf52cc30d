"""Client order ids: ``<profile prefix><run tag><sequence>``, alphanumeric only.

The prefix lets a bot tell its own orders from anyone else's on a shared account, also after a
restart; the run tag keeps ids unique across restarts without persistent counters. Alphanumeric
lowercase ids fit every supported exchange's format (Gate adds ``t-`` and allows 28 chars).
"""

from __future__ import annotations

import string

from kasmm.core.types import ClientOrderId

_ALPHABET = string.digits + string.ascii_lowercase
MAX_CLIENT_ID_LEN = 24


def base36(n: int) -> str:
    """``n`` (>= 0) in lowercase base 36."""
    if n < 0:
        raise ValueError("negative")
    out = []
    while True:
        n, r = divmod(n, 36)
        out.append(_ALPHABET[r])
        if n == 0:
            return "".join(reversed(out))


class ClientIdFactory:
    """Makes unique client order ids for one profile run."""

    def __init__(self, prefix: str, run_tag: str) -> None:
        # str.isalnum() alone accepts non-ASCII letters and digits ("é", "٣"), which no
        # exchange accepts in a client order id.
        if not (prefix.isascii() and prefix.isalnum() and run_tag.isascii() and run_tag.isalnum()):
            raise ValueError("prefix and run tag must be alphanumeric")
        self.prefix = prefix
        self._stem = prefix + run_tag
        self._seq = 0

    @staticmethod
    def run_tag_for(epoch_s: float) -> str:
        """A 5-char tag from a start time (changes every 0.1 s, so restarts never collide)."""
        return base36(int(epoch_s * 10) % 36**5).rjust(5, "0")

    def next(self) -> ClientOrderId:
        """The next id."""
        self._seq += 1
        cid = f"{self._stem}{base36(self._seq)}"
        if len(cid) > MAX_CLIENT_ID_LEN:
            raise OverflowError("client id sequence exhausted")
        return ClientOrderId(cid)

    def is_own(self, client_id: str) -> bool:
        """True when ``client_id`` belongs to this profile (any run)."""
        return client_id.startswith(self.prefix)
