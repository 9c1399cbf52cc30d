"""The operator's channel to a running supervisor: a Unix socket in the state directory.

``kasmm top`` and ``kasmm pause``/``resume``/``mode``/``reload`` send actions here; the HTTP
endpoint (``/status``, ``/metrics``) stays read-only. Only the state directory's owner can use
it: the socket is mode 0600 in a 0700 directory. It is bound under a temporary name, made
0600, then renamed into place, so it is never reachable with wider permissions (and a socket
a crashed supervisor left behind is replaced atomically; one a live process listens on never
is); the supervisor removes it on exit.

Each supervisor process has its own socket: ``control.sock``, or ``control-I-of-N.sock`` for
shard ``I/N`` (``--shard``, and every child of ``--processes N``), so a client finds a
profile's supervisor from the profile's name alone (:func:`socket_candidates`).

The protocol is line-JSON, one request per line, one answer per request::

    {"action": "reset|pause|resume|mode|reload", "profile": "p1", "mode": "passive",
     "operator": "alice"}
    -> {"ok": true, "message": "p1 paused by alice: ..."} | {"ok": false, "error": "..."}

``operator`` defaults to the login name of the peer process (``SO_PEERCRED``).

One read-only query rides the same channel: ``{"action": "status"}`` answers ``{"ok": true,
"status": {...}}``, the document ``/status`` serves, for a local client that knows the state
directory but not the HTTP address (``kasmm settle`` reads the halted profiles from it).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskStatus

from kasmm.shard import Shard, shard_of
from kasmm.supervisor.actions import ACTIONS, ActionError, ActionRequest

log = structlog.get_logger("kasmm.control")

__all__ = [
    "SOCKET_NAME",
    "STATUS_QUERY",
    "ControlSocketError",
    "Handler",
    "parse_request",
    "send_request",
    "serve_control_socket",
    "socket_candidates",
    "socket_path",
]

SOCKET_NAME = "control.sock"
#: The read-only query: the supervisor's status document instead of an action.
STATUS_QUERY = "status"
#: A request line longer than this is refused (a request is ~100 bytes).
MAX_LINE = 64 * 1024
#: A connection idle this long is closed (a client that never writes holds nothing).
IDLE_TIMEOUT_S = 60.0
#: AF_UNIX paths longer than this are bound through the directory's /proc/self/fd entry.
_MAX_PATH = 100

#: What the server does with one decoded request: the answer to send back.
Handler = Callable[[Mapping[str, Any], str], Awaitable[dict[str, Any]]]


class ControlSocketError(Exception):
    """No supervisor answered on the socket, or it answered nonsense (one-line reason)."""


def socket_path(state_dir: Path, shard: Shard | None) -> Path:
    """The socket of the supervisor of ``shard`` (``None``: unsharded) in ``state_dir``."""
    if shard is None:
        return state_dir / SOCKET_NAME
    return state_dir / f"control-{shard.i}-of-{shard.n}.sock"


def socket_candidates(state_dir: Path, profile: str | None) -> list[Path]:
    """The sockets that may serve ``profile`` (``None``: every supervisor), most likely first.

    The unsharded ``control.sock``, then for each shard count N with sockets present (newest
    first) the one of the profile's shard, or every shard's for ``profile=None``. A socket a
    crashed supervisor left is a candidate too: the client skips one that refuses.
    """
    out: list[Path] = []
    plain = state_dir / SOCKET_NAME
    if plain.exists():
        out.append(plain)
    by_count: dict[int, list[Path]] = {}
    for path in state_dir.glob("control-*-of-*.sock"):
        parts = path.stem.split("-")
        if len(parts) == 4 and parts[1].isdigit() and parts[3].isdigit():
            by_count.setdefault(int(parts[3]), []).append(path)
    for n in sorted(by_count, key=lambda n: -max(_mtime(p) for p in by_count[n])):
        if profile is None:
            out.extend(sorted(by_count[n]))
        else:
            mine = socket_path(state_dir, Shard(shard_of(profile, n), n))
            if mine in by_count[n]:
                out.append(mine)
    return out


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """``path`` as an AF_UNIX address, through ``/proc/self/fd`` when it is too long."""
    text = str(path)
    if len(text) <= _MAX_PATH or not sys.platform.startswith("linux"):
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class SocketInUse(Exception):
    """Another live process listens on the socket's path."""


def _answers(path: Path) -> bool:
    """Whether a process listens on the socket at ``path`` (a crash's leftover does not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            with _address(path) as address:
                probe.connect(address)
        except OSError:  # ENOENT, ECONNREFUSED (nobody listens), ENOTSOCK, EACCES
            return False
    return True


def _bind_private(path: Path) -> socket.socket:
    """A listening socket at ``path``, mode 0600 before it gets its name.

    :raises SocketInUse: a live process listens at ``path``: never renamed over (a supervisor
        of another profile directory sharing the state directory would take the first's
        actions); a socket nobody listens on, a crash's, is replaced.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _address(tmp) as address:
            sock.bind(address)
        os.chmod(tmp, 0o600)
        sock.listen(16)
        if _answers(path):
            raise SocketInUse(str(path))
        os.replace(tmp, path)
    except BaseException:
        sock.close()
        tmp.unlink(missing_ok=True)
        raise
    return sock


def parse_request(message: Mapping[str, Any], peer: str) -> ActionRequest:
    """A decoded request line as an :class:`ActionRequest`; ``peer`` is the default operator.

    :raises ActionError: not an action this socket knows, or a field of the wrong type.
    """
    action = message.get("action")
    if action not in ACTIONS:
        raise ActionError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    fields: dict[str, str | None] = {}
    for key in ("profile", "mode", "operator"):
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            raise ActionError(f"{key} must be a string")
        fields[key] = value
    operator = (fields["operator"] or "").strip() or peer
    return ActionRequest(str(action), operator, fields["profile"], fields["mode"])


def _peer_user(stream: SocketStream) -> str:
    """The login name of the process at the other end (its uid if it has none)."""
    try:
        raw = stream.extra(SocketAttribute.raw_socket)
        creds = raw.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        uid = struct.unpack("3i", creds)[1]
    except (OSError, AttributeError):
        return "unknown"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


async def serve_control_socket(
    path: Path, handler: Handler, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``handler`` on the socket at ``path`` until cancelled; then remove the socket.

    When another process already serves ``path``, serve nothing (``control_socket_in_use``,
    an error: this supervisor's profiles cannot be acted on until it has a state directory of
    its own) and leave that socket alone.
    """
    try:
        sock = _bind_private(path)
    except SocketInUse:
        log.error(
            "control_socket_in_use",
            path=str(path),
            hint="another supervisor serves this state directory's control socket: give each "
            "profile directory its own --state-dir to act on its profiles",
        )
        task_status.started()
        return
    ident = os.stat(path).st_ino
    try:
        listener = await SocketListener.from_socket(sock)
        async with listener:
            log.info("control_socket_listening", path=str(path))
            task_status.started()
            await listener.serve(lambda stream: _session(stream, handler))
    finally:
        # Only our own: a newer supervisor may have replaced it meanwhile.
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == ident:
                os.unlink(path)


async def _session(stream: SocketStream, handler: Handler) -> None:
    """One connection: answer each request line until the client closes (or idles)."""
    peer = _peer_user(stream)
    buffer = b""
    async with stream:
        while True:
            chunk = b""
            with anyio.move_on_after(IDLE_TIMEOUT_S):
                try:
                    chunk = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
            if not chunk:
                return  # idle: the timeout fired
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    await _reply(stream, await _answer(line, peer, handler))
            if len(buffer) > MAX_LINE:
                await _reply(stream, {"ok": False, "error": f"request longer than {MAX_LINE}"})
                return


async def _answer(line: bytes, peer: str, handler: Handler) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        return {"ok": False, "error": f"invalid JSON: {exc}"}
    if not isinstance(message, dict):
        return {"ok": False, "error": "a request is a JSON object"}
    try:
        return await handler(message, peer)
    except ActionError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # one bad request must not take the socket down
        log.error("control_request_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


async def _reply(stream: SocketStream, answer: Mapping[str, Any]) -> None:
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await stream.send(json.dumps(answer).encode() + b"\n")


def send_request(path: Path, request: Mapping[str, Any], timeout: float = 90.0) -> dict[str, Any]:
    """Send one request to the socket at ``path`` and return the answer (blocking).

    ``timeout`` covers a reload, which waits for the restarted profiles' first quotes.

    :raises ControlSocketError: nothing listens there, or the answer is not a JSON object.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            with _address(path) as address:
                sock.connect(address)
            sock.sendall(json.dumps(dict(request)).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except FileNotFoundError:
            raise ControlSocketError(f"no supervisor socket at {path}") from None
        except ConnectionRefusedError:
            raise ControlSocketError(f"no supervisor listens on {path} (left over?)") from None
        except PermissionError:
            raise ControlSocketError(f"{path}: permission denied (not its owner?)") from None
        except OSError as exc:
            raise ControlSocketError(f"{path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlSocketError(f"{path}: no answer") from None
    if not isinstance(answer, dict):
        raise ControlSocketError(f"{path}: unexpected answer")
    return answer
