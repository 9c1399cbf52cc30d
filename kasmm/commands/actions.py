"""``kasmm pause|resume PROFILE``, ``kasmm mode PROFILE MODE``, ``kasmm reload``: operator
actions sent to the running supervisor's control socket (:mod:`kasmm.daemon.control_socket`),
the same channel ``kasmm top`` uses; each is recorded with the operator's name."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from kasmm.daemon.control_socket import ControlSocketError, send_request, socket_candidates
from kasmm.store.state_dir import resolve_state_dir

__all__ = ["action_command", "send_action"]


def send_action(state_dir: Path, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Send ``request`` to the supervisor that runs its profile (every supervisor of the state
    directory for a ``reload``); return the answers (one per supervisor reached).

    :raises ControlSocketError: no supervisor listens on any socket of ``state_dir``.
    """
    profile = request.get("profile")
    candidates = socket_candidates(state_dir, profile if isinstance(profile, str) else None)
    answers: list[dict[str, Any]] = []
    last: ControlSocketError | None = None
    for i, path in enumerate(candidates):
        try:
            answer = send_request(path, request)
        except ControlSocketError as exc:
            last = exc  # a socket a crashed supervisor left behind: try the next one
            continue
        unknown = str(answer.get("error", "")).startswith("unknown profile")
        if profile is not None and unknown and i + 1 < len(candidates):
            continue  # another supervisor of this state directory may run it
        answers.append(answer)
        if profile is not None:
            break
    if not answers:
        raise last or ControlSocketError(f"no supervisor socket in {state_dir}")
    return answers


def action_command(
    action: str,
    profile: str | None,
    *,
    mode: str | None = None,
    state_dir: Path | None = None,
    operator: str | None = None,
) -> int:
    """Send one action; exit 0 when done, 1 when refused (not paused, unknown profile, ...),
    2 when no supervisor answers."""
    request: dict[str, Any] = {
        "action": action,
        "profile": profile,
        "mode": mode,
        "operator": operator or getpass.getuser(),
    }
    try:
        answers = send_action(resolve_state_dir(state_dir), request)
    except ControlSocketError as exc:
        print(f"kasmm {action}: {exc}", file=sys.stderr)
        return 2
    status = 0
    for answer in answers:
        if answer.get("ok") is True:
            print(answer.get("message") or "done")
        else:
            print(f"kasmm {action}: {answer.get('error')}", file=sys.stderr)
            status = 1
    return status
