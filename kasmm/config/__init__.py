"""Profile configuration: models, loading, cross-field checks and secret references.

The supervisor and bot use :func:`load_paths` / :func:`load_file` and the result types below;
credentials are resolved only when a venue is built, with :func:`resolve_credentials`.
"""

from kasmm.config.loader import (
    ConfigIssue,
    DirectoryLoad,
    LoadedProfile,
    load_file,
    load_paths,
)
from kasmm.config.schema import AccountLimits, AccountsFile, Profile
from kasmm.config.secrets import (
    MissingSecret,
    ResolvedCredentials,
    resolve_credentials,
    resolve_secret,
)

__all__ = [
    "AccountLimits",
    "AccountsFile",
    "ConfigIssue",
    "DirectoryLoad",
    "LoadedProfile",
    "MissingSecret",
    "Profile",
    "ResolvedCredentials",
    "load_file",
    "load_paths",
    "resolve_credentials",
    "resolve_secret",
]
