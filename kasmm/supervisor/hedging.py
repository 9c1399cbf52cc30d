"""Hedging inside a supervisor: each hedged profile's fills offset through its hedge profile's bot.

A profile A with a ``hedge:`` block gets a :class:`HedgeLink` for as long as the supervisor runs
it. The link is the I/O loop around the pure hedger (:mod:`kasmm.core.hedge`): A's bot reports
every fill it stored (its ``on_fill`` callback), the link takes it in (the ledger first: a fill
taken in twice is ignored), and when the hedger asks, it sends the IOC **through B's running
bot** (:meth:`kasmm.bot.Bot.send_ioc`: B's venue stack, token bucket and client ids; never a
connection of its own). B's fills of it come back through B's own fill path and callback.

Every hedge order is written to the ledger with its links to A's fills *before* it is sent, and
settled there once its answer and fills are in; the residual of each A fill is kept current.
A restart of A, of B or of the whole process never hedges twice: the link starts from the
ledger (:meth:`kasmm.store.Ledger.recover_hedges`). B stopped, halted or failing: nothing goes
out, the residual stays, and the ``max_unhedged_base`` rule trips A through
``Engine.external_trip(trip, "hedge")`` until the residual is back within the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from anyio.abc import TaskGroup

from kasmm.config.schema import Profile
from kasmm.core.types import Fill
from kasmm.supervisor.hedge_link import HedgeHost, HedgeLink

__all__ = ["HedgeHost", "HedgeLink", "Hedging"]


class Hedging:
    """The supervisor's hedge links, by hedged profile name."""

    def __init__(self, host: HedgeHost) -> None:
        self.host = host
        self.links: dict[str, HedgeLink] = {}

    def fill_reporter(self, name: str) -> Callable[[Fill], None]:
        """The ``on_fill`` callback of profile ``name``'s bots."""
        return lambda fill: self.on_fill(name, fill)

    def on_fill(self, name: str, fill: Fill) -> None:
        """Profile ``name`` stored ``fill``: its link takes it in; links hedging onto ``name``
        settle their order with it."""
        link = self.links.get(name)
        if link is not None:
            link.a_filled(fill)
        for other in self.links.values():
            if other.target == name:
                other.b_filled(fill)

    async def sync(self, tg: TaskGroup, running: Mapping[str, Profile]) -> None:
        """Links for exactly the hedged profiles of ``running`` (what runs, or is about to):
        a link whose profile stopped or whose ``hedge:`` changed ends (after any IOC in
        flight) before its successor starts, so two never hedge one profile."""
        for name, link in list(self.links.items()):
            profile = running.get(name)
            if profile is None or profile.hedge != link.config:
                link.stop()
                await link.done.wait()
                del self.links[name]
        for name, profile in running.items():
            if profile.hedge is not None and profile.enabled and name not in self.links:
                link = HedgeLink(profile, self.host)
                self.links[name] = link
                tg.start_soon(link.run, name=f"hedge:{name}")
                await link.recovered.wait()

    def bot_started(self, name: str) -> None:
        """A new bot of profile ``name``: the links of and onto it look again."""
        for link in self.links.values():
            if name in (link.name, link.target):
                link.bot_started()

    def status(self) -> dict[str, dict[str, Any]]:
        """Each link's ``/status`` row, by hedged profile."""
        return {name: link.status() for name, link in sorted(self.links.items())}
