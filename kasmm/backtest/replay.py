"""The ``replay`` market as the backtest sees it (re-exported from the venue layer).

The file format, its reader and writer live in :mod:`kasmm.venues.sim.replay_format`; the
market model and :class:`ReplayVenue` (the fill rules) in :mod:`kasmm.venues.sim.replay`. They
are venues: ``build_venue`` serves a ``replay`` profile with them in ``kasmm run`` and the
supervisor too, and venues never import the backtest. This module keeps the names the backtest
commands, ``kasmm record`` and their users import from here.
"""

from __future__ import annotations

from kasmm.venues.sim.replay import (
    QueuePosition,
    ReplayEnded,
    ReplayModel,
    ReplayVenue,
    replay_rules_config,
)
from kasmm.venues.sim.replay_format import (
    COLUMNS,
    REPLAY_MAGIC,
    REPLAY_VERSION,
    ReplayFormatError,
    ReplayHeader,
    ReplayInfo,
    ReplayWriter,
    iter_items,
    read_header,
    scan,
    write_rows,
)

__all__ = [
    "COLUMNS",
    "REPLAY_MAGIC",
    "REPLAY_VERSION",
    "QueuePosition",
    "ReplayEnded",
    "ReplayFormatError",
    "ReplayHeader",
    "ReplayInfo",
    "ReplayModel",
    "ReplayVenue",
    "ReplayWriter",
    "iter_items",
    "read_header",
    "replay_rules_config",
    "scan",
    "write_rows",
]
