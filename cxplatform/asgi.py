"""ASGI entry point: HTTP through Django; WebSockets (chat widget and inbox) through Channels."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.http import FileResponse, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings")


# What a browser session adds to a request (the session, its user, flash messages, allauth's state), and the
# requests that never use it: the widget's (its key and visitor token) and the API's with a key. Those run
# without these middleware: about 5% less CPU for a visitor message or a page of the jobs API (median of 40
# paired rounds in process; the server's other costs are the same either way).
SESSION_MIDDLEWARE = frozenset({
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
})  # fmt: skip


def is_sessionless(request: HttpRequest) -> bool:
    path = request.path_info
    if path.startswith("/widget/"):
        return True
    return path.startswith("/api/") and request.META.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer "


class SessionlessHandler(base.BaseHandler):
    """The project's middleware without SESSION_MIDDLEWARE, for `is_sessionless` requests."""

    def __init__(self) -> None:
        super().__init__()
        # load_middleware reads settings.MIDDLEWARE: swapped for the call (made once, at start-up, before serving).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = [m for m in full if m not in SESSION_MIDDLEWARE]
        try:
            self.load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = full


class ThreadPoolASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's middleware and view in one call on one of a
    fixed set of threads, as a threaded WSGI server does.

    Django's own handler starts and joins a new thread for every request (so every request also
    set up its own database wrapper and pooled connection), and since our middleware is
    synchronous it went from the event loop to that thread, back to the loop to resolve the URL,
    and to the thread again for the view. Here the middleware chain is built synchronous, as under
    WSGI, and runs in one hop. A request waits for a free thread (first come, first served); its
    thread-local state is what a threaded WSGI server's would be (request_finished still closes
    the request's database connections as configured). Async views still work, as under WSGI."""

    def __init__(self, threads: int) -> None:
        base.BaseHandler.__init__(self)  # not ASGIHandler's: it builds the chain for async
        self.load_middleware(is_async=False)
        self.sessionless = SessionlessHandler()
        self.threads = threads
        self._idle: asyncio.Queue[ThreadPoolExecutor] | None = None

    def _idle_executors(self) -> asyncio.Queue[ThreadPoolExecutor]:
        if self._idle is None:  # in the server's event loop, after any fork
            self._idle = asyncio.Queue()
            for n in range(self.threads):
                self._idle.put_nowait(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"django-{n}"))
        return self._idle

    def shutdown(self) -> None:
        """Close each thread's database connections and stop the threads (for tests: a server
        process simply exits). Only when no request is being served."""
        idle, self._idle = self._idle, None
        while idle is not None and not idle.empty():
            executor = idle.get_nowait()
            executor.submit(connections.close_all).result()
            executor.shutdown()

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)  # type: ignore[no-any-return]

    def respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """On the request's thread: what Django's handler does there in three hops from the event loop
        (the request_started signal, the view, and closing the response, which sends request_finished).
        A response that is not streamed is closed before it is sent: its content is bytes by then."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            response = error_response
        elif is_sessionless(request):
            response = self.sessionless.get_response(request)
        else:
            response = self.get_response(request)
        assert response is not None  # create_request gives a request or an error response
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # as run_get_response does
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's handle (5.2), with one hop to the request's thread (`respond`) instead of three.
        As there, a client that disconnects while the view runs stops the wait for it (not the view)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))

        async def process_request() -> HttpResponseBase:
            response = await sync_to_async(self.respond, thread_sensitive=True)(scope, body_file)
            with contextlib.suppress(asyncio.CancelledError):  # the client disconnected while it was sent
                await self.send_response(response, send)
            return response

        responding = asyncio.create_task(process_request())
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self.listen_for_disconnect(receive)), responding]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = responding.result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if response.streaming:  # sent only now
                await sync_to_async(response.close, thread_sensitive=True)()
        body_file.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        idle = self._idle_executors()
        executor = await idle.get()
        try:
            # The executor outlives the context: asgiref leaves an executor it was given running.
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            # A view still running after a client disconnect keeps its thread: the next request
            # given this executor queues behind it.
            idle.put_nowait(executor)


django.setup(set_prefix=False)  # before the consumers import models
django_application = ThreadPoolASGIHandler(threads=settings.ASGI_THREADS)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatbot.replies import bot_model_warm  # noqa: E402
from chatbot.routing import websocket_urlpatterns  # noqa: E402


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The server's start-up and shutdown (uvicorn's lifespan protocol): warms the bot's model at start-up."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            bot_model_warm()  # where this process answers the bot itself
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {"http": django_application, "websocket": URLRouter(websocket_urlpatterns), "lifespan": lifespan}
)

# What is loaded by now lives as long as the process: keep the cyclic collector from scanning it on
# every collection (measured: the event batch service spent 58 -> 11 ms per batch in Python).
gc.freeze()
