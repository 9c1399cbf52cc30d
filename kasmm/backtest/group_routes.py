"""Which members of a group path price off which member's market (``reference:`` routes).

A group backtest simulates its members' venues only: a member's reference must read a market
exactly one member trades (none: there is no such book in the path; several: which one would
it be?). :func:`reference_routes` checks it, before any path runs and again when a path is
built, and gives each market's subscribers.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["GroupReferenceError", "reference_routes"]


class GroupReferenceError(ValueError):
    """A member's reference cannot be served by the group (``profile``: the member's name)."""

    def __init__(self, profile: str, message: str) -> None:
        super().__init__(message)
        self.profile = profile


def reference_routes(
    members: Sequence[tuple[str, str, Sequence[str]]],
) -> dict[str, list[str]]:
    """Market key -> the members (names, in the given order) whose reference reads it, from
    each member's ``(name, market key, referenced keys)``.

    :raises GroupReferenceError: a referenced market is traded by no member (a group simulates
        its members' venues only) or by several (which book would it be?).
    """
    traders: dict[str, list[str]] = {}
    for name, key, _ in members:
        traders.setdefault(key, []).append(name)
    routes: dict[str, list[str]] = {}
    for name, _, references in members:
        for key in references:
            found = traders.get(key, [])
            if len(found) == 1:
                routes.setdefault(key, []).append(name)
                continue
            reason = (
                "no profile of the group trades (a group backtest simulates its profiles' "
                "venues only)"
                if not found
                else f"several profiles trade: {', '.join(found)} (give their sim venues "
                "distinct exchange names)"
            )
            raise GroupReferenceError(name, f"reference reads {key}, which {reason}")
    return routes
