"""Where ``kasmm top`` reads and acts: the supervisor's ``/status`` (HTTP, read-only) and the
control socket of the profile's supervisor in the state directory (actions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kasmm.commands.actions import send_action
from kasmm.commands.status import TIMEOUT_S, fetch_status
from kasmm.daemon.control_socket import ControlSocketError

__all__ = ["ConsoleSource"]


@dataclass(frozen=True)
class ConsoleSource:
    """A supervisor as the console sees it. Both calls block: run them off the UI's loop."""

    addr: str
    state_dir: Path
    operator: str
    timeout_s: float = TIMEOUT_S

    def fetch(self) -> dict[str, Any]:
        """The ``/status`` document (:class:`~kasmm.commands.status.StatusFetchError`)."""
        return fetch_status(self.addr, timeout=self.timeout_s)

    def act(self, action: str, profile: str | None = None, mode: str | None = None) -> str:
        """Send an action as :attr:`operator`; return the supervisor's answer (one line)."""
        request = {"action": action, "profile": profile, "mode": mode, "operator": self.operator}
        try:
            answers = send_action(self.state_dir, request)
        except ControlSocketError as exc:
            return f"failed: {exc}"
        return "; ".join(
            str(a.get("message") or "done") if a.get("ok") is True else f"refused: {a.get('error')}"
            for a in answers
        )
