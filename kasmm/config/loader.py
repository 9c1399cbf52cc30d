"""Load profile files into validated :class:`~kasmm.config.schema.Profile` objects.

File layout
-----------
* A profile file (``*.yaml`` / ``*.yml``) holds **one profile** as a mapping. Its ``name``
  defaults to the file stem.
* A file may instead hold a **top-level list of profiles**; every entry must then set its own
  ``name`` (a list has no single stem to borrow).
* Files whose name starts with ``_`` are not profiles. ``_accounts.yaml`` may declare
  ``accounts: {NAME: {capacity: ..., refill_per_s: ...}}``: token buckets shared by every
  profile whose ``venue.account`` names that account. ``_notify.yaml`` declares notification
  targets and events (:mod:`kasmm.config.notify`). ``_portfolios.yaml`` groups profiles into
  portfolios (:mod:`kasmm.config.portfolios`). Other ``_*`` files are ignored here.

YAML is parsed as YAML 1.2 with ruamel's round-trip loader, so every problem is reported at
``path:line:col`` (1-based). Hostile input never crashes the loader: oversized, binary, vanished
or undecodable files, syntax errors, duplicate keys, aliases (refused: no alias bombs), explicit
non-core tags, deep nesting, too many nodes and non-finite numbers all become
:class:`ConfigIssue` values.
Structural errors come from pydantic, relational ones from :mod:`kasmm.config.checks`, and
missing secrets (enabled ``ccxt`` profiles only) from :mod:`kasmm.config.secrets`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from kasmm.config.checks import (
    hedge_problems,
    prefix_collisions,
    run_checks,
    run_warnings,
    world_conflicts,
)
from kasmm.config.locate import FieldPath, Pos, describe_error, field_str, lc_pos, locate, short
from kasmm.config.notify import NOTIFY_FILES, NotifyFile, notify_checks, unusable_urls
from kasmm.config.portfolios import (
    PORTFOLIO_FILES,
    PortfoliosFile,
    ResolvedPortfolio,
    portfolio_checks,
    resolve_members,
)
from kasmm.config.reader import (
    MAX_DEPTH,
    MAX_EVENTS,
    MAX_FILE_BYTES,
    FileProblem,
    parse_yaml,
    read_text,
    root_pos,
    to_plain,
)
from kasmm.config.schema import AccountLimits, AccountsFile, CcxtVenueConfig, Profile
from kasmm.config.secrets import missing_credentials
from kasmm.market.checks import unserved_references

__all__ = [
    "MAX_DEPTH",
    "MAX_EVENTS",
    "MAX_FILE_BYTES",
    "ConfigIssue",
    "DirectoryLoad",
    "LoadedProfile",
    "load_file",
    "load_paths",
]

_ACCOUNTS_FILES = ("_accounts.yaml", "_accounts.yml")
#: Where a sim venue names its world (issues of :func:`~.checks.world_conflicts` point there).
WORLD_FIELD = ("venue", "market", "world")
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ConfigIssue:
    """One located problem: ``path:line:col: profile: field: message`` (1-based line/col)."""

    path: Path
    line: int
    col: int
    profile: str | None
    field: str  #: dotted field path (``modes.passive.spread_bps``) or ``-`` for the file
    message: str
    #: ``warning``: printed, but the profile loads (:data:`~kasmm.config.checks.WARNINGS`)
    severity: str = "error"

    def __str__(self) -> str:
        who = f"{_printable(self.profile)}: " if self.profile is not None else ""
        where = f"{_printable(str(self.path))}:{self.line}:{self.col}"
        kind = "warning: " if self.severity == "warning" else ""
        return f"{where}: {who}{_printable(self.field)}: {kind}{_printable(self.message)}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """Order issues by file, position, field and message."""
        return (str(self.path), self.line, self.col, self.field, self.message)


def _printable(text: str) -> str:
    """One line, no terminal control characters (they are escaped), whatever the input."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


@dataclass(frozen=True)
class LoadedProfile:
    """A fully valid profile and the file it came from."""

    profile: Profile
    path: Path


@dataclass(frozen=True)
class DirectoryLoad:
    """Result of :func:`load_paths`: valid profiles by name, every issue, shared accounts."""

    profiles: dict[str, LoadedProfile]
    issues: list[ConfigIssue]
    accounts: dict[str, AccountLimits] = field(default_factory=dict)
    #: profile names each file holds (also invalid ones whose name is known), in file order
    files: dict[Path, list[str]] = field(default_factory=dict)
    #: ``_notify.yaml`` when present and valid (an invalid one is in ``issues``, and
    #: ``notify_invalid`` is set: a supervisor keeps the last good version then)
    notify: NotifyFile | None = None
    notify_invalid: bool = False
    #: warnings about valid profiles (they load nonetheless)
    warnings: list[ConfigIssue] = field(default_factory=list)
    #: ``_portfolios.yaml``'s groups, members resolved (``None``: no file); an invalid file is
    #: in ``issues`` with ``portfolios_invalid`` set (a supervisor keeps the last good groups)
    portfolios: tuple[ResolvedPortfolio, ...] | None = None
    portfolios_invalid: bool = False


@dataclass
class _Entry:
    """One profile of a file, valid or not (internal)."""

    name: str | None
    name_pos: Pos
    loaded: LoadedProfile | None
    #: Where an issue about the client id prefix goes: ``order_prefix``, else the name it
    #: derives from.
    prefix_pos: Pos = (0, 0)
    #: Where an issue about the simulated world goes: ``venue.market.world``.
    world_pos: Pos = (0, 0)
    #: The profile's YAML node and position, to locate an issue found across profiles.
    node: Any = None
    pos: Pos = (0, 0)


# --- validation -----------------------------------------------------------------------------


class _FileContext:
    """Collects the issues of one file (internal)."""

    def __init__(self, path: Path, env: Mapping[str, str], credentials_dir: Path | None) -> None:
        self.path = path
        self.env = env
        self.credentials_dir = credentials_dir
        self.issues: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []

    def add(
        self, pos: Pos, profile: str | None, field_name: str, message: str, severity: str = "error"
    ) -> None:
        message = " ".join(message.split())
        label = short(profile) if profile is not None else None
        issue = ConfigIssue(self.path, pos[0] + 1, pos[1] + 1, label, field_name, message, severity)
        (self.warnings if severity == "warning" else self.issues).append(issue)

    def model_errors(
        self,
        exc: ValidationError,
        model: type[BaseModel],
        node: Any,
        pos: Pos,
        profile: str | None,
    ) -> None:
        for err in exc.errors(include_input=False, include_url=False):
            where, field_name, message = describe_error(model, node, pos, err)
            self.add(where, profile, field_name, message)


def _validate_profile(
    ctx: _FileContext, node: Any, pos: Pos, data: dict[str, Any], implied: str | None
) -> _Entry:
    """Structural pass, cross-field checks, then secrets (enabled ccxt profiles only)."""
    raw_name = data.get("name", implied)
    name = raw_name if isinstance(raw_name, str) else None  # a non-string name is no name
    name_pos = lc_pos(node, "key", "name", pos) if "name" in data else (0, 0)
    before = len(ctx.issues)
    if implied is not None and "name" not in data:
        data = {"name": implied, **data}
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        ctx.model_errors(exc, Profile, node, pos, name if name is not None else implied)
        if implied is not None and "name" not in node:
            ctx.issues[before:] = [
                _implied_name_issue(i, implied) if i.field == "name" else i
                for i in ctx.issues[before:]
            ]
        return _Entry(name, name_pos, None)
    for path, message in run_checks(profile):
        ctx.add(locate(node, pos, path), profile.name, field_str(path), message)
    venue = profile.venue
    if profile.enabled and isinstance(venue, CcxtVenueConfig):
        for cred, exc_ in missing_credentials(venue.credentials, ctx.env, ctx.credentials_dir):
            path = ("venue", "credentials", cred)
            ctx.add(locate(node, pos, path), profile.name, field_str(path), exc_.messages[0])
    if len(ctx.issues) > before:
        return _Entry(profile.name, name_pos, None)
    for path, message in run_warnings(profile):
        ctx.add(locate(node, pos, path), profile.name, field_str(path), message, "warning")
    prefix_pos = locate(node, pos, ("order_prefix",)) if "order_prefix" in data else name_pos
    world_pos = locate(node, pos, WORLD_FIELD)
    loaded = LoadedProfile(profile, ctx.path)
    return _Entry(profile.name, name_pos, loaded, prefix_pos, world_pos, node, pos)


def _implied_name_issue(issue: ConfigIssue, stem: str) -> ConfigIssue:
    return ConfigIssue(
        issue.path,
        1,
        1,
        issue.profile,
        "name",
        f"name defaults to the file stem {stem[:64]!r}, which is not a valid name; "
        f"set name ({issue.message})",
    )


def _load_entries(ctx: _FileContext) -> list[_Entry]:
    """Read, parse and validate every profile of one file, issues going to ``ctx``."""
    try:
        root = parse_yaml(read_text(ctx.path))
        plain = to_plain(root, root_pos(root))
    except FileProblem as exc:
        ctx.add(exc.pos, None, "-", exc.message)
        return []
    if plain is None:
        ctx.add((0, 0), None, "-", "empty file: expected a profile (a mapping)")
        return []
    if isinstance(plain, dict):
        return [_validate_profile(ctx, root, root_pos(root), plain, ctx.path.stem)]
    if not isinstance(plain, list):
        what = type(plain).__name__
        ctx.add(root_pos(root), None, "-", f"expected a profile mapping or a list, not {what}")
        return []
    if not plain:
        ctx.add((0, 0), None, "-", "empty list: expected at least one profile")
        return []
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(plain):
        pos = lc_pos(root, "item", i, root_pos(root))
        if not isinstance(item, dict):
            ctx.add(pos, None, f"[{i}]", "each list entry must be a profile mapping")
            continue
        if "name" not in item:
            ctx.add(pos, None, f"[{i}].name", "profiles in a list must set their own name")
            continue
        entry = _validate_profile(ctx, root[i], pos, item, None)
        if entry.name is not None and entry.name in seen:
            ctx.add(
                entry.name_pos,
                entry.name,
                "name",
                f"duplicate profile name (already used by entry {seen[entry.name]})",
            )
            entry.loaded = None
        elif entry.name is not None:
            seen[entry.name] = i
        entries.append(entry)
    return entries


def _resolve_options(
    env: Mapping[str, str] | None, credentials_dir: Path | None
) -> tuple[Mapping[str, str], Path | None]:
    if env is None:
        env = os.environ
    if credentials_dir is None and os.environ.get("CREDENTIALS_DIRECTORY"):
        credentials_dir = Path(os.environ["CREDENTIALS_DIRECTORY"])
    return env, credentials_dir


def load_file(
    path: Path, *, env: Mapping[str, str] | None = None, credentials_dir: Path | None = None
) -> tuple[list[LoadedProfile], list[ConfigIssue]]:
    """Load every profile of one file: the valid ones, and every issue found.

    ``env`` defaults to ``os.environ`` and ``credentials_dir`` to ``$CREDENTIALS_DIRECTORY``.
    ``_accounts.yaml`` is validated (no profiles); other ``_*`` files yield nothing.
    """
    loaded, ctx = _load_file(path, env, credentials_dir)
    return loaded, ctx.issues


def _load_file(
    path: Path, env: Mapping[str, str] | None, credentials_dir: Path | None
) -> tuple[list[LoadedProfile], _FileContext]:
    env, credentials_dir = _resolve_options(env, credentials_dir)
    ctx = _FileContext(Path(path), env, credentials_dir)
    if ctx.path.name.startswith("_"):
        if ctx.path.name in _ACCOUNTS_FILES:
            _load_accounts(ctx)
        elif ctx.path.name in NOTIFY_FILES:
            _load_notify(ctx)
        elif ctx.path.name in PORTFOLIO_FILES:
            _read_portfolios(ctx)
        return [], ctx
    entries = _load_entries(ctx)
    return [e.loaded for e in entries if e.loaded is not None], ctx


def _load_accounts(ctx: _FileContext) -> dict[str, AccountLimits]:
    try:
        root = parse_yaml(read_text(ctx.path))
        plain = to_plain(root, root_pos(root))
    except FileProblem as exc:
        ctx.add(exc.pos, None, "-", exc.message)
        return {}
    if plain is None:
        return {}
    if not isinstance(plain, dict):
        ctx.add(root_pos(root), None, "-", "expected a mapping with an 'accounts' key")
        return {}
    try:
        return dict(AccountsFile.model_validate(plain).accounts)
    except ValidationError as exc:
        ctx.model_errors(exc, AccountsFile, root, root_pos(root), None)
        return {}


def _load_notify(ctx: _FileContext) -> NotifyFile | None:
    """``_notify.yaml``: structure, cross-field checks, then every URL reference resolved."""
    try:
        root = parse_yaml(read_text(ctx.path))
        plain = to_plain(root, root_pos(root))
    except FileProblem as exc:
        ctx.add(exc.pos, None, "-", exc.message)
        return None
    if plain is None:
        return NotifyFile()
    if not isinstance(plain, dict):
        ctx.add(root_pos(root), None, "-", "expected a mapping with a 'targets' key")
        return None
    try:
        cfg = NotifyFile.model_validate(plain)
    except ValidationError as exc:
        ctx.model_errors(exc, NotifyFile, root, root_pos(root), None)
        return None
    before = len(ctx.issues)
    for path, message in [*notify_checks(cfg), *unusable_urls(cfg, ctx.env, ctx.credentials_dir)]:
        ctx.add(locate(root, root_pos(root), path), None, field_str(path), message)
    return cfg if len(ctx.issues) == before else None


def _read_portfolios(ctx: _FileContext) -> tuple[PortfoliosFile, Any] | None:
    """``_portfolios.yaml``: structure and the checks within the file; with its parsed tree
    (the membership pass, which needs every profile, locates its issues in it)."""
    try:
        root = parse_yaml(read_text(ctx.path))
        plain = to_plain(root, root_pos(root))
    except FileProblem as exc:
        ctx.add(exc.pos, None, "-", exc.message)
        return None
    if plain is None:
        return PortfoliosFile(), root
    if not isinstance(plain, dict):
        ctx.add(root_pos(root), None, "-", "expected a mapping with a 'portfolios' key")
        return None
    try:
        cfg = PortfoliosFile.model_validate(plain)
    except ValidationError as exc:
        ctx.model_errors(exc, PortfoliosFile, root, root_pos(root), None)
        return None
    problems = portfolio_checks(cfg)
    for path, message in problems:
        ctx.add(locate(root, root_pos(root), path), None, field_str(path), message)
    return None if problems else (cfg, root)


def _resolve_portfolios(
    ctx: _FileContext,
    read: tuple[PortfoliosFile, Any],
    profiles: Mapping[str, LoadedProfile],
    invalid: set[str],
) -> tuple[ResolvedPortfolio, ...] | None:
    """The membership pass over the final profiles; ``None`` when any member is wrong."""
    cfg, root = read
    groups, problems = resolve_members(
        cfg, {name: lp.profile for name, lp in profiles.items()}, invalid
    )
    for path, message in problems:
        ctx.add(locate(root, root_pos(root), path), None, field_str(path), message)
    return None if problems else tuple(groups)


def _list_dir(directory: Path, issues: list[ConfigIssue]) -> list[Path]:
    """``*.yaml``/``*.yml`` entries of a directory; symlinks leaving it are refused."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        issues.append(ConfigIssue(directory, 1, 1, None, "-", f"cannot list: {exc.strerror}"))
        return []
    real_dir = Path(os.path.realpath(directory))
    out: list[Path] = []
    for name in names:
        if name.startswith(".") or not name.lower().endswith(_SUFFIXES):
            continue
        path = directory / name
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.is_relative_to(real_dir):
                message = "symlink points outside the directory; refused"
                issues.append(ConfigIssue(path, 1, 1, None, "-", message))
                continue
        out.append(path)
    return out


def load_paths(
    paths: Sequence[Path],
    *,
    env: Mapping[str, str] | None = None,
    credentials_dir: Path | None = None,
    prefer: Mapping[str, Path] | None = None,
) -> DirectoryLoad:
    """Load files and/or directories (``*.yaml``, ``*.yml``, not recursive), sorted by path.

    A profile name used twice is an issue on the later file's ``name`` key (1:1 when the name is
    the file stem); only the first keeps its place in ``profiles``. ``prefer`` (name -> file,
    what a supervisor runs now) makes that file the first for its name while it still declares
    the name, so a new file cannot take a running profile over by sorting before it.

    Enabled profiles on one exchange account with equal client id prefixes
    (:func:`~kasmm.config.checks.prefix_collisions`) are all refused: an issue on each one's
    ``order_prefix`` (or ``name``), none of them in ``profiles``.
    So are enabled sim profiles naming one world with different settings
    (:func:`~kasmm.config.checks.world_conflicts`): an issue on each one's
    ``venue.market.world``. And so is a profile whose ``reference:`` names a simulated market
    not exactly one enabled profile trades (:func:`~kasmm.market.checks.unserved_references`),
    on the field naming it, and one whose hedge target cannot take its hedges
    (:func:`~kasmm.config.checks.hedge_problems`), on its ``hedge.profile``.
    """
    env, credentials_dir = _resolve_options(env, credentials_dir)
    issues: list[ConfigIssue] = []
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(_list_dir(path, issues))
        elif path.exists() or path.is_symlink():
            found.append(path)
        else:
            issues.append(ConfigIssue(path, 1, 1, None, "-", "no such file or directory"))
    # The same file named twice (directly and through its directory) is loaded once.
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(os.path.abspath(path), path)
    candidates = set(unique.values())
    profiles: dict[str, LoadedProfile] = {}
    accounts: dict[str, AccountLimits] = {}
    notify: NotifyFile | None = None
    notify_invalid = False
    portfolio_read: tuple[_FileContext, tuple[PortfoliosFile, Any] | None] | None = None
    files: dict[Path, list[str]] = {}
    owners: dict[str, Path] = {}
    parsed: list[tuple[Path, _FileContext, list[_Entry]]] = []
    for path in sorted(candidates):
        ctx = _FileContext(path, env, credentials_dir)
        if path.name.startswith("_"):
            if path.name in _ACCOUNTS_FILES:
                for acct, limits in _load_accounts(ctx).items():
                    if acct in accounts:
                        ctx.add((0, 0), None, f"accounts.{acct}", "account declared twice")
                    accounts.setdefault(acct, limits)
            elif path.name in NOTIFY_FILES:
                if notify is not None or notify_invalid:
                    ctx.add((0, 0), None, "-", "a second notification file; only one is read")
                else:
                    notify = _load_notify(ctx)
                    notify_invalid = notify is None
            elif path.name in PORTFOLIO_FILES:
                if portfolio_read is not None:
                    ctx.add((0, 0), None, "-", "a second portfolio file; only one is read")
                else:
                    portfolio_read = (ctx, _read_portfolios(ctx))
                    continue  # its issues are collected after the membership pass
            issues.extend(ctx.issues)
            continue
        entries = _load_entries(ctx)
        files[path] = [e.name for e in entries if e.name is not None]
        parsed.append((path, ctx, entries))
    preferred = {name: os.path.abspath(p) for name, p in (prefer or {}).items()}
    for path, _ctx, entries in parsed:
        for entry in entries:
            if entry.name is not None and preferred.get(entry.name) == os.path.abspath(path):
                owners.setdefault(entry.name, path)
    placed: dict[str, tuple[_FileContext, _Entry]] = {}
    for path, ctx, entries in parsed:
        for entry in entries:
            if entry.name is None:
                continue
            if entry.name in owners and owners[entry.name] != path:
                ctx.add(
                    entry.name_pos,
                    entry.name,
                    "name",
                    f"duplicate profile name (already defined in {owners[entry.name]})",
                )
                continue
            owners.setdefault(entry.name, path)
            if entry.loaded is not None and entry.name not in profiles:
                profiles[entry.name] = entry.loaded
                placed[entry.name] = (ctx, entry)
    for name, message in prefix_collisions([lp.profile for lp in profiles.values()]):
        ctx, entry = placed[name]
        ctx.add(entry.prefix_pos, name, "order_prefix", message)
        del profiles[name]
    for name, message in world_conflicts([lp.profile for lp in profiles.values()]):
        ctx, entry = placed[name]
        ctx.add(entry.world_pos, name, field_str(WORLD_FIELD), message)
        del profiles[name]
    for name, field_path, message in unserved_references([lp.profile for lp in profiles.values()]):
        ctx, entry = placed[name]
        ctx.add(locate(entry.node, entry.pos, field_path), name, field_str(field_path), message)
        profiles.pop(name, None)
    declared = {e.name for _p, _c, entries in parsed for e in entries if e.name is not None}
    refused = declared - profiles.keys()
    for name, message in hedge_problems([lp.profile for lp in profiles.values()], refused):
        ctx, entry = placed[name]
        hedge_field: FieldPath = ("hedge", "profile")
        ctx.add(locate(entry.node, entry.pos, hedge_field), name, field_str(hedge_field), message)
        del profiles[name]
    for _path, ctx, _entries in parsed:
        issues.extend(ctx.issues)
    portfolios: tuple[ResolvedPortfolio, ...] | None = None
    portfolios_invalid = False
    if portfolio_read is not None:
        pctx, read = portfolio_read
        invalid = {n for names in files.values() for n in names if n not in profiles}
        if read is not None:
            portfolios = _resolve_portfolios(pctx, read, profiles, invalid)
        portfolios_invalid = portfolios is None
        issues.extend(pctx.issues)
    issues.sort(key=ConfigIssue.sort_key)
    warnings = sorted((w for _p, ctx, _e in parsed for w in ctx.warnings), key=ConfigIssue.sort_key)
    return DirectoryLoad(
        profiles=profiles,
        issues=issues,
        accounts=accounts,
        files=files,
        warnings=warnings,
        notify=notify,
        notify_invalid=notify_invalid,
        portfolios=portfolios,
        portfolios_invalid=portfolios_invalid,
    )


def load_one_for_command(path: Path, name: str | None = None) -> Profile | int:
    """The single profile a one-profile command (run, backtest, record) works on.

    Prints every issue (or the ambiguity) to stderr and returns the exit status instead:
    1 when the file is invalid, 2 when it does not hold exactly one (named) profile.
    Warnings are printed to stderr too; they do not stop the command.
    """
    import sys

    loaded, ctx = _load_file(path, None, None)
    for warning in ctx.warnings:
        print(warning, file=sys.stderr)
    if ctx.issues:
        for issue in ctx.issues:
            print(issue, file=sys.stderr)
        return 1
    if name is not None:
        loaded = [lp for lp in loaded if lp.profile.name == name]
    if len(loaded) != 1:
        print(f"{path}: expected exactly one profile (use --name)", file=sys.stderr)
        return 2
    return loaded[0].profile
