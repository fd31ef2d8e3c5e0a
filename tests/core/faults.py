"""Database faults a test (or bench/faults_database.py) can cause without root, all on 127.0.0.1.

- `closed_port()`: a port nobody listens on (an unreachable database: connection refused).
- `SilentServer`: accepts TCP connections and never answers (a frozen database, seen from a new
  connection).
- `TcpProxy`: forwards to the real PostgreSQL; `cut()` refuses new connections and drops the open ones,
  `freeze()` keeps every connection open and stops forwarding (a frozen database, seen from the pool).
- `Outage`: a Database of its own on the test's data, that a test takes away and gives back.
- `served(app)`: the application under a real uvicorn server (keep-alive connections, real sockets).
- `finishes(fn)`: fn's result, or a failure if it is still waiting long after every budget under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from sqlalchemy import event
from sqlalchemy.engine import make_url

from fanchaoxin.core.db import Database

T = TypeVar("T")

# Far beyond every timeout the fault tests configure (one or two seconds): reaching it means the call
# hung, which is what these tests exist to catch. It bounds the test; it measures nothing.
HANG_GUARD_SECONDS = 60.0


def closed_port() -> int:
    """A local port with no listener: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SilentServer:
    """Listens and never accepts: the kernel completes the handshake, and then nothing ever comes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TcpProxy:
    """127.0.0.1:<port> → target, on its own event loop thread; a test can cut it and freeze it."""

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fcx-test-proxy", daemon=True)
        self.thread.start()
        self._flowing: asyncio.Event = self._call(self._make_event)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = port
        self._call(self._listen)

    def _call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    @staticmethod
    def _make_event() -> asyncio.Event:
        event = asyncio.Event()
        event.set()
        return event

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()  # frozen: hold what came, send nothing
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)

    def freeze(self) -> None:
        """Keep every connection (and accept new ones) but forward nothing."""
        self._call(self._flowing.clear)

    def thaw(self) -> None:
        self._call(self._flowing.set)

    def cut(self) -> None:
        """Refuse new connections and drop the open ones (the database went away)."""

        async def cut() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._call(cut)

    def restore(self) -> None:
        """Listen again on the same port and forward (after `cut` or `freeze`)."""
        self._call(self._flowing.set)
        if self._server is None:
            self._call(self._listen)

    def close(self) -> None:
        self.cut()
        self.thaw()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Outage:
    """A second Database on the test's data (the fixture's own stays untouched) that can be taken away.

    PostgreSQL through a `TcpProxy` that is cut (refused, open connections dropped); SQLite, which has
    no socket, by sending new connections to a path that is a directory ("unable to open database
    file") and dropping the pooled ones. Either way the driver's own errors, as in a real outage.
    """

    def __init__(self, url: str, nowhere: Path) -> None:
        parsed = make_url(url)
        self.proxy: TcpProxy | None = None
        if parsed.get_backend_name() == "postgresql":
            self.proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
            url = parsed.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)
        self.nowhere = nowhere
        self.nowhere.mkdir(parents=True, exist_ok=True)
        self.down = False
        self.db = Database(url)
        event.listen(self.db.engine, "do_connect", self._connect)

    def _connect(self, dialect: Any, _record: Any, cargs: list[Any], _cparams: dict[str, Any]) -> None:
        if self.down and dialect.name == "sqlite":
            cargs[0] = str(self.nowhere)

    def cut(self) -> None:
        self.down = True
        if self.proxy is not None:
            self.proxy.cut()
        else:
            self.db.engine.dispose()

    def restore(self) -> None:
        self.down = False
        if self.proxy is not None:
            self.proxy.restore()

    def close(self) -> None:
        self.db.dispose()
        if self.proxy is not None:
            self.proxy.close()


@contextlib.contextmanager
def served(app: Any) -> Iterator[int]:
    """The app under uvicorn on 127.0.0.1 (its port), stopped on exit.

    The socket listens before the server starts, so a client may connect at once: the kernel holds the
    connection until uvicorn accepts it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    # log_config=None: leave the test's logging (caplog) as it is.
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=HANG_GUARD_SECONDS)
        sock.close()


def finishes(fn: Callable[[], T], *, guard: float = HANG_GUARD_SECONDS) -> T:
    """fn()'s result (or its exception); a test failure if it is still waiting after `guard` seconds."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="fcx-test-call", daemon=True)
    thread.start()
    thread.join(guard)
    if thread.is_alive():
        raise AssertionError(f"still waiting after {guard:g} s: the call hangs")
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]
