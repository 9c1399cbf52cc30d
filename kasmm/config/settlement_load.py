"""Read ``_settlement.yaml`` into a validated :class:`~.settlement.SettlementFile`, every problem
a ``file:line:col`` :class:`~kasmm.config.loader.ConfigIssue`.

Apart from :mod:`kasmm.config.loader` for now (the loader does not import it, so wiring it into
:func:`~kasmm.config.loader.load_paths` later is one call, not a cycle). The passes run in the
loader's order: the YAML reader's (hostile input becomes issues), the structure, the checks
within the file, the membership pass when the loaded profiles are given, and the withdrawal
credentials only when asked (``--execute`` needs them; ``--plan`` must run on a host that
does not hold them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kasmm.config.loader import ConfigIssue
from kasmm.config.locate import FieldPath, describe_error, field_str, locate
from kasmm.config.reader import FileProblem, parse_yaml, read_text, root_pos, to_plain
from kasmm.config.schema import Profile
from kasmm.config.secrets import missing_credentials
from kasmm.config.settlement import (
    DestinationCheck,
    SettlementFile,
    prefix_check,
    settlement_checks,
    settlement_members,
)

__all__ = ["SettlementLoad", "load_settlement"]


@dataclass(frozen=True)
class SettlementLoad:
    """The file when valid (``None`` otherwise), each account's profiles, every issue."""

    settlement: SettlementFile | None
    issues: list[ConfigIssue]
    #: account -> the names of the profiles trading on it (after the membership pass)
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _issue(path: Path, root: Any, where: FieldPath, message: str) -> ConfigIssue:
    line, col = locate(root, root_pos(root), where)
    return ConfigIssue(path, line + 1, col + 1, None, field_str(where), " ".join(message.split()))


def load_settlement(
    path: Path,
    *,
    profiles: Mapping[str, Profile] | None = None,
    check_destination: DestinationCheck = prefix_check,
    require_credentials: bool = False,
    env: Mapping[str, str] | None = None,
    credentials_dir: Path | None = None,
) -> SettlementLoad:
    """Load and check one ``_settlement.yaml``.

    :param profiles: the loaded profiles (name -> profile); with them, the membership pass runs
        (each account named by exchange profiles on one exchange, a withdrawal key of its own).
    :param check_destination: the address/xpub validator (``kasmm.settle.address``'s SDK check;
        the network-prefix check by default).
    :param require_credentials: resolve every withdrawal credential (environment, then
        ``credentials_dir``, default ``$CREDENTIALS_DIRECTORY``); a missing one is an issue
        naming the variable, never a value.
    """
    path = Path(path)
    try:
        root = parse_yaml(read_text(path))
        plain = to_plain(root, root_pos(root))
    except FileProblem as exc:
        return SettlementLoad(
            None, [ConfigIssue(path, exc.pos[0] + 1, exc.pos[1] + 1, None, "-", exc.message)]
        )
    if plain is None:
        return SettlementLoad(SettlementFile(), [])
    if not isinstance(plain, dict):
        line, col = root_pos(root)
        message = "expected a mapping with a 'settlement' key"
        return SettlementLoad(None, [ConfigIssue(path, line + 1, col + 1, None, "-", message)])
    try:
        cfg = SettlementFile.model_validate(plain)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_input=False, include_url=False):
            (line, col), name, message = describe_error(SettlementFile, root, root_pos(root), err)
            issues.append(ConfigIssue(path, line + 1, col + 1, None, name, message))
        return SettlementLoad(None, sorted(issues, key=ConfigIssue.sort_key))
    found = settlement_checks(cfg, check_destination)
    members: dict[str, tuple[str, ...]] = {}
    if profiles is not None:
        members, problems = settlement_members(cfg, profiles)
        found.extend(problems)
    if require_credentials:
        if env is None:
            env = os.environ
        if credentials_dir is None and os.environ.get("CREDENTIALS_DIRECTORY"):
            credentials_dir = Path(os.environ["CREDENTIALS_DIRECTORY"])
        for name, acct in cfg.settlement.items():
            creds = acct.withdrawal_credentials
            for cred, exc_ in missing_credentials(creds, env, credentials_dir):
                where: FieldPath = ("settlement", name, "withdrawal_credentials", cred)
                found.append((where, exc_.messages[0]))
    issues = sorted((_issue(path, root, w, m) for w, m in found), key=ConfigIssue.sort_key)
    return SettlementLoad(None if issues else cfg, issues, members if not issues else {})
