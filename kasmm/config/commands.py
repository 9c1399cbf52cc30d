"""The ``kasmm validate`` and ``kasmm schema`` commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kasmm.config.loader import load_paths
from kasmm.config.schema import Profile

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "SCHEMA_TITLE",
    "profile_json_schema",
    "schema_command",
    "validate_command",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TITLE = "kasmm profile"


def validate_command(paths: Sequence[Path]) -> int:
    """Validate profile files/directories; print each issue (sorted) to stdout.

    A summary ``N profiles valid, M issues`` goes to stderr. Returns 0 when everything is valid,
    1 when there is any issue and 2 when a path does not exist (usage error).
    """
    missing = [p for p in paths if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        for path in missing:
            print(f"kasmm validate: no such file or directory: {path}", file=sys.stderr)
        return 2
    result = load_paths([Path(p) for p in paths])
    for issue in sorted(result.issues, key=lambda i: i.sort_key()):
        print(issue)
    sys.stdout.flush()
    n, m = len(result.profiles), len(result.issues)
    print(
        f"{n} profile{'' if n == 1 else 's'} valid, {m} issue{'' if m == 1 else 's'}",
        file=sys.stderr,
    )
    return 1 if result.issues else 0


def profile_json_schema() -> dict[str, Any]:
    """JSON Schema of one profile, for YAML language servers.

    ``name`` is not required (it defaults to the file stem) and ``$schema``/``title`` are set.
    """
    body = Profile.model_json_schema()
    required = [r for r in body.get("required", []) if r != "name"]
    body["required"] = required
    schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, "title": SCHEMA_TITLE}
    schema.update({k: v for k, v in body.items() if k not in ("$schema", "title")})
    schema["description"] = (
        "One kasmm market-making profile (one bot). `name` defaults to the file stem. "
        "Credentials are ${VAR} references, never secrets."
    )
    return schema


def schema_command() -> int:
    """Print the profile JSON Schema to stdout; returns 0."""
    print(json.dumps(profile_json_schema(), indent=2, ensure_ascii=False))
    return 0
