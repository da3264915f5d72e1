"""The gunicorn worker that serves the ASGI application (docker-compose's web, the Dockerfile).

    gunicorn cxplatform.asgi:application -k cxplatform.server.UvicornWorker --workers 2

uvicorn's worker on uvloop and httptools (a missing one fails at start instead of falling back to
the pure-Python asyncio loop and h11 parser), which spreads connections evenly over the workers.

All workers wait on one listening socket, and uvloop (like asyncio) accepts every connection
waiting when it becomes readable: a client or proxy opening its keep-alive connections together
gave one worker 24 or 28 of 32 and left the other idle, for as long as the connections lived.
SO_REUSEPORT sockets per worker split them by a hash, no better than coin flips (19/13 seen).
Here each worker publishes how many connections it holds in a table shared by the workers of one
gunicorn (created before the fork), takes one connection at a time, and leaves a connection to a
worker that holds fewer when there is one; if that worker has not taken it within HANDOFF_SECONDS
(busy, or gone) it takes it anyway, so no connection waits longer for being left.
"""

from __future__ import annotations

import asyncio
import gc
import mmap
import multiprocessing
import os
import socket
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker as _UvicornWorker

# Long enough for a busy worker's event loop to get the GIL back (the switch interval is 5 ms).
GC_YOUNG_THRESHOLD = 20_000
HANDOFF_SECONDS = 0.01
# How often a worker republishes its count, so that closed connections show.
PUBLISH_SECONDS = 0.1
SLOTS = 256

# (pid, connections) per worker. Made at import, which gunicorn does in the master when it loads
# the worker class, so every worker forked from it shares them; outside gunicorn they are private.
_TABLE = memoryview(mmap.mmap(-1, SLOTS * 16)).cast("q")
_TABLE_LOCK = multiprocessing.Lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LoadTable:
    """This worker's slot in the shared table, and the fewest connections any other live worker holds."""

    def __init__(self) -> None:
        pid = os.getpid()
        locked = _TABLE_LOCK.acquire(timeout=1)  # workers start concurrently (and one may die holding it)
        try:
            free = [s for s in range(SLOTS) if _TABLE[2 * s] in (0, pid) or not _alive(_TABLE[2 * s])]
            self.slot = free[0] if free else SLOTS - 1
            _TABLE[2 * self.slot + 1] = 0
            _TABLE[2 * self.slot] = pid
        finally:
            if locked:
                _TABLE_LOCK.release()

    def publish(self, connections: int) -> None:
        _TABLE[2 * self.slot + 1] = connections

    def fewest_elsewhere(self) -> int | None:
        counts = [
            _TABLE[2 * s + 1] for s in range(SLOTS) if s != self.slot and _TABLE[2 * s] > 0 and _alive(_TABLE[2 * s])
        ]
        return min(counts) if counts else None

    def release(self) -> None:
        if _TABLE[2 * self.slot] == os.getpid():
            _TABLE[2 * self.slot] = 0


class BalancedServer(Server):
    """uvicorn's server, taking connections from gunicorn's shared sockets as described above."""

    listening: list[socket.socket]

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.listening = []
        if sockets is None:  # not under gunicorn: uvicorn binds and accepts as usual
            await super().startup(sockets=None)
            return
        await super().startup(sockets=[])  # lifespan and the server state; no asyncio servers
        self.loop = asyncio.get_running_loop()
        self.table = LoadTable()
        self.setting_up: set[asyncio.Task[Any]] = set()  # accepted, protocol not yet attached
        self.listening = list(sockets)
        for sock in self.listening:
            sock.setblocking(False)
            self.loop.add_reader(sock.fileno(), self._readable, sock)
        self._publish_periodically()

    def _connections(self) -> int:
        return len(self.server_state.connections) + len(self.setting_up)

    def _publish_periodically(self) -> None:
        if self.listening:
            self.table.publish(self._connections())
            self.loop.call_later(PUBLISH_SECONDS, self._publish_periodically)

    def _readable(self, sock: socket.socket) -> None:
        fewest = self.table.fewest_elsewhere()
        if fewest is not None and self._connections() > fewest:
            self._pause(sock, HANDOFF_SECONDS, then_accept=True)  # leave it to that worker for a moment
        else:
            self._accept_one(sock)

    def _pause(self, sock: socket.socket, seconds: float, *, then_accept: bool) -> None:
        """Stop watching `sock` (it stays readable: the reader would be called again at once)."""

        def resume() -> None:
            if sock in self.listening:  # not shutting down
                self.loop.add_reader(sock.fileno(), self._readable, sock)
                if then_accept:
                    self._accept_one(sock)

        self.loop.remove_reader(sock.fileno())
        self.loop.call_later(seconds, resume)

    def _accept_one(self, sock: socket.socket) -> None:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it
        except OSError as exc:  # out of file descriptors and the like: retry in a second, as asyncio does
            self.loop.call_exception_handler({"message": "accept failed", "exception": exc, "socket": sock})
            self._pause(sock, 1.0, then_accept=False)
            return
        conn.setblocking(False)
        config = self.config
        # As uvicorn's startup builds it (the stubs' Protocol has no such arguments).
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=self.loop
        )
        task = self.loop.create_task(self.loop.connect_accepted_socket(lambda: protocol, conn))
        self.setting_up.add(task)
        task.add_done_callback(self.setting_up.discard)
        self.table.publish(self._connections())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.listening:
            for sock in self.listening:  # stop accepting before uvicorn closes the sockets
                self.loop.remove_reader(sock.fileno())
            self.listening = []
            self.table.release()
        await super().shutdown(sockets=sockets)


class UvicornWorker(_UvicornWorker):
    # No per-message deflate on sockets: chat frames are small JSON, and compressing them cost CPU at both ends
    # and a zlib state per open socket (it showed in the chat load bench's server and client profiles).
    CONFIG_KWARGS: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "ws_per_message_deflate": False}

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        # The loaded application's objects live as long as the process: keep the collector from walking them
        # again and again (freeze), and collect the young generation less often than every 700 allocations.
        # Measured in 4 paired runs of bench/bench_api_overhead.py: jobs p99 74/64/76/98 -> 73/46/57/69 ms,
        # server CPU 2.0-2.4 -> 1.8-2.0 ms a request.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
        server = BalancedServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
