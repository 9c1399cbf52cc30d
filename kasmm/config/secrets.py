"""Secret references: profiles hold ``${VAR}``, never a secret.

A reference is resolved from the environment first, then from the file
``$CREDENTIALS_DIRECTORY/VAR`` (systemd ``LoadCredential=``/``SetCredential=``), with a trailing
newline stripped. Resolved values only ever live in :class:`pydantic.SecretStr`, whose ``repr``
and ``str`` are ``'**********'``; error messages name the variable, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from kasmm.errors import ConfigError

if TYPE_CHECKING:
    from kasmm.config.schema import Credentials

__all__ = [
    "MissingSecret",
    "ResolvedCredentials",
    "default_credentials_dir",
    "missing_credentials",
    "resolve_credentials",
    "resolve_secret",
    "secret_variable",
]

_REF_RE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_MAX_SECRET_FILE_BYTES = 64 * 1024
_CREDENTIAL_FIELDS = ("api_key", "secret", "password")


class MissingSecret(ConfigError):
    """A referenced secret is neither in the environment nor in ``$CREDENTIALS_DIRECTORY``."""

    def __init__(self, variable: str, message: str) -> None:
        self.variable = variable
        super().__init__([message])


@dataclass(frozen=True)
class ResolvedCredentials:
    """Resolved API credentials; each value is a ``SecretStr`` (``repr`` shows ``**********``)."""

    api_key: SecretStr
    secret: SecretStr
    password: SecretStr | None = None


def secret_variable(ref: str) -> str:
    """The variable name of a ``${VAR}`` reference (``ValueError`` without echoing the input)."""
    match = _REF_RE.fullmatch(ref)
    if match is None:
        raise ValueError("secrets must be referenced as ${VAR}, never inlined")
    return match.group(1)


def default_credentials_dir() -> Path | None:
    """``$CREDENTIALS_DIRECTORY`` as a path, if set and non-empty."""
    value = os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(value) if value else None


def resolve_secret(
    ref: str, env: Mapping[str, str] | None = None, credentials_dir: Path | None = None
) -> SecretStr:
    """Resolve ``${VAR}`` from ``env`` (default ``os.environ``), else ``credentials_dir/VAR``.

    ``credentials_dir`` defaults to ``$CREDENTIALS_DIRECTORY``. Raises :class:`MissingSecret`
    naming the variable when neither source has a non-empty value.
    """
    variable = secret_variable(ref)
    environ: Mapping[str, str] = os.environ if env is None else env
    if credentials_dir is None:
        credentials_dir = default_credentials_dir()
    value = environ.get(variable)
    if value:
        return SecretStr(value)
    where = "and no file in $CREDENTIALS_DIRECTORY"
    if credentials_dir is not None:
        try:
            with open(credentials_dir / variable, "rb") as fh:
                raw = fh.read(_MAX_SECRET_FILE_BYTES + 1)
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise MissingSecret(
                variable,
                f"environment variable {variable} is not set and "
                f"$CREDENTIALS_DIRECTORY/{variable} cannot be read: {exc.strerror or 'error'}",
            ) from None
        if raw is not None:
            if len(raw) > _MAX_SECRET_FILE_BYTES:
                raise MissingSecret(
                    variable, f"$CREDENTIALS_DIRECTORY/{variable} is too large to be a secret"
                )
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise MissingSecret(
                    variable, f"$CREDENTIALS_DIRECTORY/{variable} is not valid UTF-8"
                ) from None
            if text:
                return SecretStr(text)
            where = f"and $CREDENTIALS_DIRECTORY/{variable} is empty"
    state = "is empty" if variable in environ else "is not set"
    raise MissingSecret(variable, f"environment variable {variable} {state} ({where})")


def resolve_credentials(
    creds: Credentials, env: Mapping[str, str] | None = None, credentials_dir: Path | None = None
) -> ResolvedCredentials:
    """Resolve every reference of ``creds``; raises :class:`MissingSecret` for the first gap."""
    password = None
    if creds.password is not None:
        password = resolve_secret(creds.password, env, credentials_dir)
    return ResolvedCredentials(
        api_key=resolve_secret(creds.api_key, env, credentials_dir),
        secret=resolve_secret(creds.secret, env, credentials_dir),
        password=password,
    )


def missing_credentials(
    creds: Credentials, env: Mapping[str, str] | None = None, credentials_dir: Path | None = None
) -> list[tuple[str, MissingSecret]]:
    """Every credential field of ``creds`` that cannot be resolved, with its error."""
    out: list[tuple[str, MissingSecret]] = []
    for name in _CREDENTIAL_FIELDS:
        ref = getattr(creds, name)
        if ref is None:
            continue
        try:
            resolve_secret(ref, env, credentials_dir)
        except MissingSecret as exc:
            out.append((name, exc))
    return out
