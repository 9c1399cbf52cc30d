"""Client order ids: ``<profile prefix>_<run tag><sequence>``, e.g. ``mm_3k9x0b2a1``.

The id tells a bot its own orders from anyone else's on a shared account, also after a restart.
Ownership is exact: an id belongs to a profile when it starts with the profile's prefix *and the
delimiter* ``_``. Profile prefixes are ``[a-z0-9]`` and never contain ``_``, so no profile's ids
can start with another profile's ``prefix_`` (``mm_...`` is not ``mm1_...``), which a bare
``startswith(prefix)`` could not guarantee.

``_`` is the one delimiter every supported exchange accepts: BingX allows letters, digits and
``_`` only (not ``-``); Gate's ``text`` allows ``[0-9A-Za-z_.-]`` after ``t-``; KuCoin's
``clientOid`` letters, digits, ``_`` and ``-``; MEXC documents no set for ``newClientOrderId``
(its spot API mirrors Binance's, whose rule is ``[a-zA-Z0-9-_]{1,36}``). At most 24 characters
(Gate: 28 with ``t-``).

The run tag is random (:func:`secrets`), not derived from the wall clock: a clock stepped back
or the old tag's 70-day wrap can no longer give two runs the same ids. A backtest passes a seeded
:class:`random.Random` so that its ids, like the rest of a path, are a function of the seed.

Ids from before the delimiter (``<prefix><5-char tag><sequence>``, alphanumeric) are *legacy*:
:meth:`ClientIdFactory.is_legacy` recognises that exact shape so that start-up can cancel orders
an older kasmm left resting; they are never this run's orders and never booked as its fills.
"""

from __future__ import annotations

import random
import re
import secrets
import string

from kasmm.core.types import ClientOrderId

__all__ = [
    "DELIMITER",
    "MAX_CLIENT_ID_LEN",
    "MAX_PREFIX_LEN",
    "RUN_TAG_LEN",
    "ClientIdFactory",
    "base36",
    "owned_prefix",
]

_ALPHABET = string.digits + string.ascii_lowercase
#: Between the profile prefix and the rest of the id; never part of a prefix.
DELIMITER = "_"
MAX_CLIENT_ID_LEN = 24
#: Longest profile prefix (the profile schema allows 2-8 characters ``[a-z0-9]``).
MAX_PREFIX_LEN = 8
#: Random base-36 characters per run: 36**8 ~ 2.8e12 tags, so even 10,000 restarts of one
#: profile collide with probability ~2e-5 (the birthday bound), with 7 characters left for
#: the sequence (36**7 ~ 7.8e10 orders per run).
RUN_TAG_LEN = 8
_LEGACY_TAG_LEN = 5
_PREFIX_RE = re.compile(rf"[a-z0-9]{{1,{MAX_PREFIX_LEN}}}")
_TAG_RE = re.compile(r"[a-z0-9]+")


#: Every two-digit base-36 string, ``00`` to ``zz``, at its value (immutable).
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def base36(n: int) -> str:
    """``n`` (>= 0) in lowercase base 36."""
    if n < 0:
        raise ValueError("negative")
    # Two digits per step from a table: one per order placed, and a run's sequence numbers
    # stay below 36**2 for ~1,300 orders (one lookup). The readable form (one digit per step)
    # is held against this by test_base36_round_trips (int(s, 36) across the 36**2 steps).
    out = ""
    while n >= 1296:  # 36**2
        out = _PAIRS[n % 1296] + out
        n //= 1296
    return (_ALPHABET[n] if n < 36 else _PAIRS[n]) + out


def owned_prefix(profile_prefix: str) -> str:
    """What every client id of the profile ``profile_prefix`` starts with: ``mm`` -> ``mm_``."""
    return profile_prefix + DELIMITER


class ClientIdFactory:
    """Makes the unique client order ids of one profile run and recognises the profile's ids.

    :param prefix: the profile's prefix (``[a-z0-9]``, 1-8 characters).
    :param run_tag: this run's tag; default :meth:`new_run_tag` (with ``rng``).
    :param rng: a seeded generator for the default tag (backtests); default :mod:`secrets`.
    """

    def __init__(
        self, prefix: str, run_tag: str | None = None, *, rng: random.Random | None = None
    ) -> None:
        # fullmatch on an explicit ASCII class: str.isalnum() would accept "é" or "٣", which no
        # exchange takes in a client order id, and upper case would let "MM" and "mm" coexist.
        if not _PREFIX_RE.fullmatch(prefix):
            raise ValueError(f"prefix must be 1-{MAX_PREFIX_LEN} characters [a-z0-9]")
        if run_tag is None:
            run_tag = self.new_run_tag(rng)
        if not _TAG_RE.fullmatch(run_tag):
            raise ValueError("run tag must be characters [a-z0-9]")
        #: The profile's prefix as configured (``mm``).
        self.profile_prefix = prefix
        #: What every id of this profile starts with, delimiter included (``mm_``); what
        #: ``venue.cancel_all`` takes to cancel exactly this profile's orders.
        self.prefix = owned_prefix(prefix)
        self.run_tag = run_tag
        self._stem = self.prefix + run_tag
        if len(self._stem) >= MAX_CLIENT_ID_LEN:
            raise ValueError(f"prefix and run tag leave no room in {MAX_CLIENT_ID_LEN} characters")
        self._legacy = re.compile(
            re.escape(prefix) + f"[a-z0-9]{{{_LEGACY_TAG_LEN}}}[1-9a-z][a-z0-9]*"
        )
        self._seq = 0

    @staticmethod
    def new_run_tag(rng: random.Random | None = None) -> str:
        """A random ``RUN_TAG_LEN``-character tag; from ``rng`` when given (reproducible)."""
        space = 36**RUN_TAG_LEN
        n = secrets.randbelow(space) if rng is None else rng.randrange(space)
        return base36(n).rjust(RUN_TAG_LEN, "0")

    @staticmethod
    def run_tag_for(epoch_s: float) -> str:
        """Deprecated (the tag repeats after a clock step back): use :meth:`new_run_tag`.

        A 5-character tag from a start time, changing every 0.1 s and wrapping every ~70 days.
        """
        return base36(int(epoch_s * 10) % 36**_LEGACY_TAG_LEN).rjust(_LEGACY_TAG_LEN, "0")

    def next(self) -> ClientOrderId:
        """The next id."""
        self._seq += 1
        cid = self._stem + base36(self._seq)
        if len(cid) > MAX_CLIENT_ID_LEN:
            raise OverflowError("client id sequence exhausted")
        return ClientOrderId(cid)

    def is_own(self, client_id: str) -> bool:
        """True when ``client_id`` belongs to this profile (any run of this id format)."""
        return client_id.startswith(self.prefix)

    def is_this_run(self, client_id: str) -> bool:
        """True when ``client_id`` was issued by this factory (this run of the profile)."""
        return client_id.startswith(self._stem)

    def is_legacy(self, client_id: str) -> bool:
        """True when ``client_id`` has the exact shape of this profile's pre-delimiter ids.

        ``<prefix><5 chars [a-z0-9]><sequence in base 36, no leading 0>``, at most 24 characters.
        Only for cancelling what an older kasmm left resting at start-up: a human's id of that
        shape would match too (as it always did), so such ids are never booked as fills.
        """
        return len(client_id) <= MAX_CLIENT_ID_LEN and self._legacy.fullmatch(client_id) is not None
