"""``_portfolios.yaml``: groups of profiles that hold one base asset and are risked as one book.

A portfolio names its members (profile names, or globs over them: ``mexc-*``), an aggregate
inventory target over every member's balances (``target: {share: 0.5}`` of the group's value,
or ``{base: 250000}``), the share bounds its deviation is normalised by (as a profile's
``inventory`` block has), and group kill switches acting on every member.

Every member holds the same base asset *and* quotes it in the same quote asset: the group's
value adds the members' quote balances and values their base at each one's own mid, which is
only one number when the quote assets are one (KAS/USDT and KAS/USDC are two groups).

This module is the structural pass (pydantic, frozen, unknown keys refused), the cross-field
checks (:func:`portfolio_checks`: one of share or base, pause rules, time zones) and the
membership pass (:func:`resolve_members`, which needs the loaded profiles: unknown names,
globs matching nothing, another base or quote asset, a profile in two portfolios). The loader
turns every finding into a ``file:line:col`` issue on ``_portfolios.yaml``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kasmm.config.checks import valid_timezone
from kasmm.config.locate import FieldPath
from kasmm.config.schema import (
    NonNegativeDecimal,
    PositiveDecimal,
    PositiveFloat,
    Profile,
    Share,
    StrictModel,
)
from kasmm.core.portfolio import BaseExposureLimit, GroupLimits, GroupSpec
from kasmm.core.risk import DailyLossLimit, DrawdownLimit

__all__ = [
    "PORTFOLIO_FILES",
    "GroupAction",
    "GroupBaseExposureRule",
    "GroupDailyLossRule",
    "GroupDrawdownRule",
    "GroupKillSwitch",
    "GroupTarget",
    "PortfolioConfig",
    "PortfoliosFile",
    "ResolvedPortfolio",
    "group_spec",
    "portfolio_checks",
    "resolve_members",
]

#: The file names the loader reads (the first one found wins, like ``_notify.yaml``).
PORTFOLIO_FILES = ("_portfolios.yaml", "_portfolios.yml")

#: What a group rule does to every member: a halt holds until ``kasmm reset`` of a member,
#: a pause lasts ``pause_s``.
GroupAction = Literal["halt", "pause"]

MemberPattern = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9*?\[\]][A-Za-z0-9_.*?\[\]!-]{0,63}$"),
    Field(description="A profile name, or a glob over profile names (mexc-*, *-kas-usdt)."),
]

_GROUP_ACTION = (
    "What a trip does to every member. halt: each member cancels its orders and stops quoting "
    "until `kasmm reset MEMBER` (stored in each member's ledger, so a restart keeps it). "
    "pause: each member cancels its orders and resumes after pause_s."
)


class GroupRule(StrictModel):
    """Common fields of every group kill-switch rule."""

    action: GroupAction = Field("halt", description=_GROUP_ACTION)
    pause_s: PositiveFloat | None = Field(
        None, description="Seconds to pause; required with action: pause, refused otherwise."
    )


class GroupDrawdownRule(GroupRule):
    """Trip when the group's equity falls this far below its running peak."""

    quote: PositiveDecimal | None = Field(
        None, description="Limit in quote currency below the group's equity peak."
    )
    pct: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = Field(
        None, description="Limit in percent of the group's peak equity (either limit trips)."
    )


class GroupDailyLossRule(GroupRule):
    """Trip when the group's PnL today (in ``timezone``) falls below ``-quote``."""

    quote: PositiveDecimal = Field(description="Loss limit for one day, in quote currency.")
    timezone: str = Field("UTC", description="IANA time zone in which a day starts at 00:00.")


class GroupBaseExposureRule(GroupRule):
    """Trip when the base held across every member is too large."""

    base: PositiveDecimal | None = Field(
        None, description="Largest total base across every member (absolute)."
    )
    beyond_target: PositiveDecimal | None = Field(
        None, description="Largest |total base - the group's target base| (either limit trips)."
    )


class GroupKillSwitch(StrictModel):
    """The group's kill-switch rules; each is off unless set."""

    max_drawdown: GroupDrawdownRule | None = None
    max_daily_loss: GroupDailyLossRule | None = None
    max_base_exposure: GroupBaseExposureRule | None = None


class GroupTarget(StrictModel):
    """The group's inventory target: a share of its combined value, or an amount of base."""

    share: Share | None = Field(
        None, description="Target base value as a share of the group's combined value."
    )
    base: NonNegativeDecimal | None = Field(
        None, description="Target as a total base amount across every member."
    )


class PortfolioConfig(StrictModel):
    """One group of profiles holding the same base asset."""

    members: tuple[MemberPattern, ...] = Field(
        min_length=1, description="Profile names or globs; every match is a member."
    )
    target: GroupTarget = Field(
        default_factory=lambda: GroupTarget(share=0.5),
        description="Aggregate inventory target every member skews toward (default share 0.5).",
    )
    min_share: Share = Field(
        0.1, description="The group's share at which its deviation reaches -1 (fully short)."
    )
    max_share: Share = Field(
        0.9, description="The group's share at which its deviation reaches +1 (fully long)."
    )
    kill_switch: GroupKillSwitch = Field(default_factory=GroupKillSwitch)


GroupName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
    Field(description="Portfolio name (in status, metrics and logs)."),
]


class PortfoliosFile(StrictModel):
    """The ``_portfolios.yaml`` file: named groups of profiles."""

    portfolios: dict[GroupName, PortfolioConfig] = Field(
        default_factory=dict, description="Portfolio name -> its members, target and rules."
    )


@dataclass(frozen=True, slots=True)
class ResolvedPortfolio:
    """A portfolio with its globs resolved against the loaded profiles."""

    name: str
    config: PortfolioConfig
    #: Member profile names, sorted (disabled profiles included: they simply do not run).
    members: tuple[str, ...]
    base: str
    quote: str


def portfolio_checks(cfg: PortfoliosFile) -> list[tuple[FieldPath, str]]:
    """Cross-field problems within the file (no profiles needed)."""
    out: list[tuple[FieldPath, str]] = []
    for name, group in cfg.portfolios.items():
        at: FieldPath = ("portfolios", name)
        target = group.target
        if (target.share is None) == (target.base is None):
            out.append(((*at, "target"), "set exactly one of share or base"))
        if group.min_share > group.max_share:
            out.append(((*at, "min_share"), "min_share is above max_share"))
        if target.share is not None and not group.min_share <= target.share <= group.max_share:
            out.append(((*at, "target", "share"), "the target share lies outside min/max_share"))
        ks = group.kill_switch
        for rule_name in type(ks).model_fields:
            rule = getattr(ks, rule_name)
            if not isinstance(rule, GroupRule):
                continue
            where: FieldPath = (*at, "kill_switch", rule_name, "pause_s")
            if rule.action == "pause" and rule.pause_s is None:
                out.append((where, "action 'pause' requires pause_s (seconds to pause)"))
            elif rule.action != "pause" and rule.pause_s is not None:
                message = f"pause_s only applies to action 'pause' (action is {rule.action})"
                out.append((where, message))
        dd = ks.max_drawdown
        if dd is not None and dd.quote is None and dd.pct is None:
            out.append(((*at, "kill_switch", "max_drawdown"), "set quote or pct (or both)"))
        exposure = ks.max_base_exposure
        if exposure is not None and exposure.base is None and exposure.beyond_target is None:
            message = "set base or beyond_target (or both)"
            out.append(((*at, "kill_switch", "max_base_exposure"), message))
        loss = ks.max_daily_loss
        if loss is not None and not valid_timezone(loss.timezone):
            out.append(
                (
                    (*at, "kill_switch", "max_daily_loss", "timezone"),
                    f"unknown time zone {loss.timezone[:64]!r} "
                    "(use an IANA name such as 'Europe/Berlin')",
                )
            )
    return out


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def resolve_members(
    cfg: PortfoliosFile, profiles: Mapping[str, Profile], invalid: Collection[str] = ()
) -> tuple[list[ResolvedPortfolio], list[tuple[FieldPath, str]]]:
    """Every portfolio's members among ``profiles``, and every membership problem.

    :param invalid: names of profiles whose file does not validate now: a member named so is
        not an error of this file (the profile's own issue says why), it just has no config.
    :return: the portfolios (only those without a problem) and the problems, each at the
        ``members`` entry it concerns.
    """
    out: list[ResolvedPortfolio] = []
    problems: list[tuple[FieldPath, str]] = []
    owner: dict[str, str] = {}
    names = sorted(profiles)
    for group_name, group in cfg.portfolios.items():
        before = len(problems)
        members: dict[str, int] = {}
        for i, pattern in enumerate(group.members):
            at: FieldPath = ("portfolios", group_name, "members", i)
            if _is_glob(pattern):
                matched = fnmatch.filter(names, pattern)
                if not matched and not fnmatch.filter(invalid, pattern):
                    problems.append((at, f"{pattern!r} matches no profile"))
            elif pattern in profiles:
                matched = [pattern]
            else:
                if pattern not in invalid:
                    problems.append((at, f"no profile named {pattern!r}"))
                matched = []
            for name in matched:
                members.setdefault(name, i)
        base = quote = ""
        first = ""
        for name, i in members.items():
            at = ("portfolios", group_name, "members", i)
            profile = profiles[name]
            if name in owner and owner[name] != group_name:
                problems.append(
                    (
                        at,
                        f"profile {name!r} is already in portfolio {owner[name]!r} "
                        "(a profile belongs to one portfolio at most)",
                    )
                )
                continue
            owner[name] = group_name
            if not first:
                first, base, quote = name, profile.base, profile.quote
                continue
            if profile.base != base:
                problems.append(
                    (
                        at,
                        f"member {name!r} trades {profile.symbol}: its base {profile.base} is "
                        f"not the group's {base} (from {first!r})",
                    )
                )
            elif profile.quote != quote:
                problems.append(
                    (
                        at,
                        f"member {name!r} trades {profile.symbol}: its quote {profile.quote} is "
                        f"not the group's {quote} (from {first!r}); a group values every "
                        "member in one quote asset",
                    )
                )
        if len(problems) == before and first:
            out.append(ResolvedPortfolio(group_name, group, tuple(sorted(members)), base, quote))
    return out, problems


def group_spec(group: ResolvedPortfolio) -> GroupSpec:
    """The portfolio as the pure core reads it (:mod:`kasmm.core.portfolio`)."""
    cfg = group.config
    ks = cfg.kill_switch
    dd, loss, exposure = ks.max_drawdown, ks.max_daily_loss, ks.max_base_exposure
    return GroupSpec(
        name=group.name,
        target_share=cfg.target.share,
        target_base=cfg.target.base,
        min_share=cfg.min_share,
        max_share=cfg.max_share,
        limits=GroupLimits(
            max_drawdown=(
                None
                if dd is None
                else DrawdownLimit(action=dd.action, pause_s=dd.pause_s, quote=dd.quote, pct=dd.pct)
            ),
            max_daily_loss=(
                None
                if loss is None
                else DailyLossLimit(
                    action=loss.action,
                    pause_s=loss.pause_s,
                    quote=loss.quote,
                    timezone=loss.timezone,
                )
            ),
            max_base_exposure=(
                None
                if exposure is None
                else BaseExposureLimit(
                    action=exposure.action,
                    pause_s=exposure.pause_s,
                    base=exposure.base,
                    beyond_target=exposure.beyond_target,
                )
            ),
        ),
    )
