"""``kasmm schema``: print the profile JSON Schema (for YAML language servers)."""

from __future__ import annotations

import json
from typing import Any

from kasmm.config.schema import Profile

__all__ = ["JSON_SCHEMA_DIALECT", "SCHEMA_TITLE", "profile_json_schema", "schema_command"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TITLE = "kasmm profile"


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
