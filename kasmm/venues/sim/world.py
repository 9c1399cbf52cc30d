"""Simulated worlds: one latent ("true") price shared by several simulated venues.

KAS trades on several exchanges at once; the price is discovered on the deep ones and the thin
ones follow, late and noisily. A *world* models that: one latent price path, and each
``random_walk`` venue naming the world shows a view of it (``market.world``, ``lag_ms``,
``noise_bps``) with its own book and takers. Reference pricing and hedging across venues then
mean something in the demo, in tests and in backtests.

**The latent path** (:class:`LatentPrice`) is a geometric random walk on a fixed grid of steps,
``step_s`` apart from the world's *origin*: ``P(0) = s0`` and
``P(n) = P(n - 1) * exp(sigma_bps / 1e4 * sqrt(step_s) * Z(n) + J(n))``, the ``Z(n)`` drawn in
order from the world's own generator, ``random.Random(seed + seed_offset)``. ``J(n)`` is an
optional jump (``jump_rate_per_s > 0``): with probability ``1 - exp(-jump_rate_per_s *
step_s)`` a step jumps by ``jump_bps / 1e4`` times an exponential draw, up or down with
probability 1/2 (the jump draws follow the step's normal draw, from the same generator; without
jumps nothing more is drawn). Price discovery comes in jumps on real markets (a large order, a
news print on the deep venue); they are what a venue lagging by half a second cannot follow
and what its stale quotes are picked off on. Steps are generated
lazily, when first asked for, always in order from step 1: the value of step ``n`` is a pure
function of the world's parameters and ``n``, whichever venue asks first and in whatever
interleaving (the determinism the group backtest and the supervisor rely on). The price at time
``t`` is the price of the last step at or before ``t`` (flat at ``s0`` before the origin).

**The origin** is the clock time at which the world's first venue was built
(``clock.now()``, on the interval clock): venues of one supervisor then share the path in real
time, and the venues of a backtest path in virtual time (which starts at 0).

**The registry** (:class:`SimWorlds`) is owned by whoever runs the venues together (a
supervisor, one path of a group backtest) and injected into the venue factory; there is no
module-level registry, so two supervisors in one process (tests) or two backtest paths never
share a world by accident. It holds its worlds weakly: a world lives as long as a venue uses
it, so a world whose every venue is gone (a reload that changed its settings) starts afresh.

**A venue's view** (:class:`VenueWorld`): at each book update its mid is
``P(now - lag) * exp(x)``, where ``x`` is the venue's own deviation, a log-space
Ornstein-Uhlenbeck process of stationary standard deviation ``noise_bps`` and half-life
``noise_halflife_s``, sampled at the book interval ``dt``:
``x' = a * x + sigma_x * sqrt(1 - a**2) * Z`` with ``a = 0.5 ** (dt / halflife)``, ``x`` at the
start drawn from its stationary law. Its ``Z`` come from the venue's own generator, in the place
of the walk's step draw of a venue without a world, so the venue's takers draw exactly as they
would without one. Mean reversion keeps the venue within a few ``noise_bps`` of the lagged
latent price however long it runs.
"""

from __future__ import annotations

import gc
import math
import random
import weakref
from array import array
from dataclasses import dataclass
from decimal import Decimal

from kasmm.config.schema import RandomWalkMarket, SimWorldConfig
from kasmm.errors import FatalVenueError
from kasmm.venues.sim.random_walk import expovariate, gauss

__all__ = [
    "LatentPrice",
    "SimWorlds",
    "VenueWorld",
    "WorldConflict",
    "WorldParams",
    "venue_world",
]

#: The longest lag a venue may have (the schema's ``lag_ms`` bound), in seconds.
MAX_LAG_S = 60.0
#: How far behind the latest step asked for a world keeps its steps, in seconds: every venue
#: asks for ``now - lag`` (and its arbitrageurs for ``now``) with ``lag <= MAX_LAG_S`` on one
#: shared clock, so twice the longest lag leaves ample room.
RETAIN_S = 2 * MAX_LAG_S
#: Tolerance, in steps, of the step index of a time: ``origin + n * step_s`` computed in
#: floats may fall a hair before step ``n``, which must still count as step ``n``. The error
#: grows with the clock's magnitude (an ulp of a monotonic clock after 100 days of uptime is
#: ~2e-9 s, 2e-8 steps of 0.1 s); 1e-6 steps (0.1 us at the default step) covers years.
_INDEX_EPS = 1e-6


class WorldConflict(FatalVenueError):
    """A venue names a world that another live venue uses with different settings."""


@dataclass(frozen=True, slots=True)
class WorldParams:
    """What defines a latent path: two venues of one world must state the same values."""

    seed: int
    s0: Decimal
    sigma_bps: float
    step_s: float
    jump_rate_per_s: float = 0.0
    jump_bps: float = 0.0

    @classmethod
    def from_config(cls, config: SimWorldConfig) -> WorldParams:
        """The parameters of a profile's ``venue.market.world``."""
        return cls(
            config.seed,
            config.s0,
            config.sigma_bps,
            config.step_s,
            config.jump_rate_per_s,
            config.jump_bps,
        )

    def describe(self) -> str:
        """``seed=7, s0=0.08, sigma_bps=2, step_s=0.1, ...``: for error messages."""
        return (
            f"seed={self.seed}, s0={self.s0}, sigma_bps={self.sigma_bps:g}, "
            f"step_s={self.step_s:g}, jump_rate_per_s={self.jump_rate_per_s:g}, "
            f"jump_bps={self.jump_bps:g}"
        )


class LatentPrice:
    """The latent price path of one world (see the module docstring); read-only for venues."""

    __slots__ = (
        "__weakref__",
        "_first",
        "_jump_mean",
        "_jump_p",
        "_log",
        "_prices",
        "_retain",
        "_rng",
        "_s0",
        "_step_sigma",
        "name",
        "origin",
        "owner",
        "params",
    )

    def __init__(
        self,
        name: str,
        params: WorldParams,
        origin: float,
        *,
        owner: str = "?",
        seed_offset: int = 0,
        retain_s: float = RETAIN_S,
    ) -> None:
        """:param origin: clock time of step 0.
        :param owner: who created the world (named when another venue disagrees with it).
        :param seed_offset: added to ``params.seed`` (one backtest path's worlds, see
            :class:`SimWorlds`).
        :param retain_s: how far behind the latest step asked for steps are kept.
        """
        self.name = name
        self.params = params
        self.origin = origin
        self.owner = owner
        self._rng = random.Random(params.seed + seed_offset)
        self._s0 = float(params.s0)
        self._step_sigma = params.sigma_bps / 1e4 * math.sqrt(params.step_s)
        # A jump in a step: probability of at least one Poisson arrival in it.
        self._jump_p = -math.expm1(-params.jump_rate_per_s * params.step_s)
        self._jump_mean = params.jump_bps / 1e4
        self._log = 0.0  # log(P(n) / s0) of the last generated step
        self._prices = array("d", [self._s0])  # steps _first .. _first + len - 1
        self._first = 0
        # An int either way: with ``retain_s = inf`` a count no run reaches.
        self._retain = max(1, math.ceil(min(retain_s / params.step_s, 2.0**62)))

    def index(self, t: float) -> int:
        """The step in force at clock time ``t``: the last at or before it (0 before the
        origin)."""
        n = math.floor((t - self.origin) / self.params.step_s + _INDEX_EPS)
        return n if n > 0 else 0

    def at(self, t: float) -> float:
        """The latent price at clock time ``t``."""
        return self.price(self.index(t))

    def price(self, n: int) -> float:
        """The latent price of step ``n`` (``n >= 0``), generating the steps up to it.

        :raises LookupError: step ``n`` is older than what the world keeps (more than
            ``retain_s`` behind the latest step asked for: no venue of a shared clock asks).
        """
        prices = self._prices
        offset = n - self._first
        if offset < 0:
            raise LookupError(
                f"world {self.name!r}: step {n} is no longer kept (the oldest is {self._first})"
            )
        if offset >= len(prices):
            self._extend(offset - len(prices) + 1)
            offset = n - self._first
            prices = self._prices
        return prices[offset]

    def _extend(self, count: int) -> None:
        """Generate ``count`` more steps, then drop those too old to be asked for again."""
        rng, sigma, s0, exp = self._rng, self._step_sigma, self._s0, math.exp
        jump_p, jump_mean = self._jump_p, self._jump_mean
        prices = self._prices
        log = self._log
        for _ in range(count):
            log += sigma * gauss(rng)
            if jump_p > 0.0 and rng.random() < jump_p:
                size = jump_mean * expovariate(rng, 1.0)
                log += size if rng.random() < 0.5 else -size
            prices.append(s0 * exp(log))
        self._log = log
        excess = len(prices) - 2 * self._retain
        if excess > 0:  # in chunks: amortized O(1) a step
            drop = len(prices) - self._retain
            del prices[:drop]
            self._first += drop


class SimWorlds:
    """The worlds of one group of venues (a supervisor, one backtest path): name -> the shared
    :class:`LatentPrice`. Owned by the caller and injected; see the module docstring."""

    def __init__(self, *, seed_offset: int = 0, retain_s: float = RETAIN_S) -> None:
        """:param seed_offset: added to every world's seed: path ``k`` of a group backtest
            passes ``k`` so that its paths differ as single backtests' ``seed + k`` do, while
            the venues of one path still share each world.
        :param retain_s: how far behind the latest step asked for each world keeps its steps
            (``math.inf``: all, for venues of one world driven one after the other on clocks
            of their own, as a test of determinism does)."""
        self.seed_offset = seed_offset
        self.retain_s = retain_s
        self._worlds: weakref.WeakValueDictionary[str, LatentPrice] = weakref.WeakValueDictionary()

    def __contains__(self, name: object) -> bool:
        return name in self._worlds

    def world(
        self, name: str, params: WorldParams, origin: float, *, user: str = "a venue"
    ) -> LatentPrice:
        """The latent price of world ``name``, created with ``params`` and ``origin`` by its
        first user; later users get the same object (their ``origin`` is not used).

        The caller keeps the returned object for as long as it uses the world.

        :param user: who asks (a profile name), named in a conflict and as a new world's owner.
        :raises WorldConflict: the world is in use with other parameters (naming both users).
        """
        latent = self._worlds.get(name)
        if latent is not None and latent.params != params:
            # Its last venues may be unreachable but not yet collected (a reference cycle):
            # a world nobody uses any more must not refuse its new settings.
            del latent
            gc.collect()
            latent = self._worlds.get(name)
            if latent is not None and latent.params != params:
                message = (
                    f"world {name!r}: {user} sets {params.describe()}, but {latent.owner} "
                    f"uses it with {latent.params.describe()}; every venue of a world must "
                    "give it the same settings"
                )
                # Not in this frame: the error's traceback would keep the world alive (and
                # refusing) for as long as someone keeps the error.
                del latent
                raise WorldConflict(message)
        if latent is None:
            latent = LatentPrice(
                name,
                params,
                origin,
                owner=user,
                seed_offset=self.seed_offset,
                retain_s=self.retain_s,
            )
            self._worlds[name] = latent
        return latent


class VenueWorld:
    """One venue's view of its world: the latent price ``lag_s`` ago times the venue's own
    mean-reverting deviation (see the module docstring)."""

    __slots__ = ("_a", "_b", "_deviation", "_sd", "lag_s", "latent")

    def __init__(
        self,
        latent: LatentPrice,
        *,
        lag_s: float,
        noise_bps: float,
        noise_halflife_s: float,
        interval_s: float,
    ) -> None:
        """:param interval_s: the venue's book interval, the step of its deviation."""
        self.latent = latent
        self.lag_s = lag_s
        self._sd = noise_bps / 1e4
        self._a = 0.5 ** (interval_s / noise_halflife_s)
        self._b = self._sd * math.sqrt(1.0 - self._a * self._a)
        self._deviation = 0.0

    @property
    def deviation(self) -> float:
        """The venue's current log deviation from the lagged latent price."""
        return self._deviation

    def first_mid(self, now: float, rng: random.Random) -> float:
        """The venue's mid at its start: the deviation drawn from its stationary law."""
        self._deviation = self._sd * gauss(rng)
        return self.latent.at(now - self.lag_s) * math.exp(self._deviation)

    def next_mid(self, now: float, rng: random.Random) -> float:
        """The venue's mid at a book update: the deviation moves one interval on."""
        self._deviation = self._a * self._deviation + self._b * gauss(rng)
        return self.latent.at(now - self.lag_s) * math.exp(self._deviation)

    def fair(self, now: float) -> float:
        """The latent price now, not lagged, without the venue's deviation (what an informed
        trader trades toward)."""
        return self.latent.at(now)


def venue_world(
    market: RandomWalkMarket, worlds: SimWorlds | None, now: float, user: str
) -> VenueWorld | None:
    """The view of its world a venue on ``market`` shows; ``None`` when it names none.

    :param worlds: the group's registry; ``None`` gives the venue a private one (a world of
        one venue: what ``kasmm run`` or a single-profile backtest of a world profile gets).
    :param now: the venue's clock time: the world's origin if the venue is its first user.
    :param user: who asks (a profile name), for conflict messages.
    :raises WorldConflict: the world is in use with other settings.
    """
    config = market.world
    if config is None:
        return None
    registry = worlds if worlds is not None else SimWorlds()
    latent = registry.world(config.name, WorldParams.from_config(config), now, user=user)
    return VenueWorld(
        latent,
        lag_s=market.lag_ms / 1000,
        noise_bps=market.noise_bps,
        noise_halflife_s=market.noise_halflife_s,
        interval_s=market.book_interval_s,
    )
