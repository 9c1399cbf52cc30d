"""The shared vocabulary of the profile language: field types, ``StrictModel`` and names.

Every config module builds on these (ranges, the ``${VAR}`` secret reference, profile, symbol and
exchange names), so they live apart from any one block: a model module imports them, never the
other way round, and :mod:`kasmm.config.schema` re-exports them for callers.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Bps = Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]

#: Pattern of a secret reference ``${VAR}``.
SECRET_REF_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"
_SECRET_REF_RE = re.compile(SECRET_REF_PATTERN)
_SECRET_REF_DESCRIPTION = "Reference to a secret as ${ENV_VAR} (never the secret itself)."


def _check_secret_ref(value: str) -> str:
    """Refuse anything but ``${VAR}``, with a message that never echoes the value."""
    if _SECRET_REF_RE.fullmatch(value) is None:
        raise PydanticCustomError(
            "secret_ref",
            "secrets must be referenced as {ref} (an environment variable or a file in "
            "{credentials_dir}), never inlined",
            {"ref": "${VAR}", "credentials_dir": "$CREDENTIALS_DIRECTORY"},
        )
    return value


#: A reference to a secret: ``${VAR}``. Resolved from the environment, then from
#: ``$CREDENTIALS_DIRECTORY/VAR`` (systemd ``LoadCredential=``). Literal secrets are refused
#: with a message that does not repeat them (and models hide inputs in their errors).
SecretRef = Annotated[
    str,
    AfterValidator(_check_secret_ref),
    WithJsonSchema(
        {"type": "string", "pattern": SECRET_REF_PATTERN, "description": _SECRET_REF_DESCRIPTION}
    ),
]

ProfileName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
    Field(description="Unique profile name; defaults to the file stem."),
]

Symbol = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$"),
    Field(description="Market symbol BASE/QUOTE, e.g. KAS/USDT."),
]

#: Exchanges kasmm supports through ccxt (checked in the cross-field pass for a clear message).
SUPPORTED_EXCHANGES: tuple[str, ...] = ("mexc", "gate", "kucoin", "bingx")

ModeName = Literal["aggressive", "passive"]
KillAction = Literal["halt", "pause", "reduce_only"]


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


#: A market's exchange as references name it: a ccxt id, or a sim venue's ``exchange`` name.
ExchangeName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
