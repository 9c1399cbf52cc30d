"""A running supervisor sends a halt to a webhook on loopback, through Apprise, for real.

The receiver is a plain HTTP server in a thread; the target is Apprise's ``json://`` URL,
held in an environment variable the ``_notify.yaml`` names. The URL's path carries a canary:
the secret must reach the receiver and nothing else (no log line, no ``/status``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from kasmm.obs.metrics import build_registry, render
from kasmm.supervisor import Supervisor
from tests.support import eventually, halting_profile

CANARY = "CANARY-h00k-9c1e"


class Receiver:
    """A loopback webhook: records every POST (path and JSON body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def titles(self) -> list[str]:
        return [str(body.get("title")) for _path, body in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join(5)


NOTIFY = """\
targets:
  - name: hook
    url: ${KASMM_HOOK_URL}
    events: [halt]
"""


@pytest.mark.anyio
async def test_a_halt_reaches_a_loopback_webhook(tmp_path: Path, receiver: Receiver) -> None:
    (tmp_path / "dd.yaml").write_text(halting_profile("dd"))
    (tmp_path / "_notify.yaml").write_text(NOTIFY)
    env = {"KASMM_HOOK_URL": f"json://127.0.0.1:{receiver.port}/hook/{CANARY}"}
    sup = Supervisor(tmp_path, env=env)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await eventually(lambda: receiver.posts, within_s=30)
            # Counted once the sender's thread has the answer (just after the receiver has it).
            await eventually(lambda: sup.notifier.counts[("halt", "sent")] == 1)
            status = json.dumps(sup.status())
            metrics = render(build_registry(sup, runtime=False))[0].decode()
            tg.cancel_scope.cancel()
    path, body = receiver.posts[0]
    assert path == f"/hook/{CANARY}"
    assert body["title"] == "kasmm: dd HALTED"
    assert body["type"] == "failure"
    assert body["message"].startswith("dd halted (max_drawdown: ")
    assert "kasmm reset dd" in body["message"]
    assert receiver.titles() == ["kasmm: dd HALTED"]  # one halt, one message
    assert 'kasmm_notifications_total{event="halt",outcome="sent"} 1.0' in metrics
    assert 'kasmm_notifications_total{event="halt",outcome="failed"} 0.0' in metrics
    sent = [e for e in logs if e["event"] == "notification_sent"]
    assert sent and sent[0]["target"] == "hook" and sent[0]["service"] == "json"
    assert CANARY not in repr(logs) and CANARY not in status and CANARY not in metrics


@pytest.mark.anyio
async def test_notify_file_is_hot_reloaded_and_a_bad_edit_keeps_the_last_good(
    tmp_path: Path, receiver: Receiver
) -> None:
    notify = tmp_path / "_notify.yaml"
    notify.write_text(NOTIFY)
    env = {"KASMM_HOOK_URL": f"json://127.0.0.1:{receiver.port}/hook"}
    sup = Supervisor(tmp_path, env=env)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        assert sup.notifier.wants("halt") and not sup.notifier.wants("config_error")
        notify.write_text(NOTIFY.replace("events: [halt]", "events: [halt, config_error]"))
        await sup.reload()
        assert sup.notifier.wants("config_error")
        good = sup.notifier.config
        notify.write_text(NOTIFY.replace("[halt]", "[hlat]"))
        result = await sup.reload()
        assert [i.field for i in result.issues] == ["targets[0].events[0]"]
        assert sup.notifier.config is good  # the last good version stays
        # ... and the broken file is itself reported, to the target that still works.
        await eventually(lambda: receiver.titles() == ["kasmm: 1 configuration error"], 10)
        assert "_notify.yaml:4:14: targets[0].events[0]" in receiver.posts[0][1]["message"]
        notify.unlink()
        await sup.reload()
        assert not sup.notifier.active
        tg.cancel_scope.cancel()
