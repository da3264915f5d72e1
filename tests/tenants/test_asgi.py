"""The ASGI handler (cxplatform/asgi.py): requests share a few long-lived threads, and with them the
threads' database connections, so nothing of one tenant's request may stay behind for the next."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client, RequestFactory
from django.urls import path

from cxplatform.asgi import ThreadPoolASGIHandler, is_sessionless
from tenants.context import tenant_context
from tenants.models import ApiKeyScope, Job, Tenant, User
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)  # the handler's threads see only committed rows


@pytest.fixture
def handler() -> Iterator[ThreadPoolASGIHandler]:
    handler = ThreadPoolASGIHandler(threads=1)
    yield handler
    handler.shutdown()  # closes the thread's connection, so the test database can be flushed and dropped


def seed(tenant: Tenant, jobs: int) -> str:
    with tenant_context(tenant):
        Job.objects.bulk_create([Job(tenant=tenant, kind=f"{tenant.slug}.{i}") for i in range(jobs)])
        return api_key_create(name="asgi", scope=ApiKeyScope.READ, created_by=None).secret


async def call(
    handler: ThreadPoolASGIHandler, path: str, key: str, send: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """GET `path` with the API key `key` (or these `headers`) through `handler`, from a client that stays
    connected."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"),
                    *(headers if headers is not None else [(b"authorization", f"Bearer {key}".encode())])],
        "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
    }  # fmt: skip
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    await handler(scope, receive, send)


async def get(
    handler: ThreadPoolASGIHandler, path: str, key: str, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await call(handler, path, key, send, headers)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def kinds(body: bytes) -> set[str]:
    import json

    return {job["kind"].split(".")[0] for job in json.loads(body)["results"]}


def test_requests_of_two_tenants_on_one_thread_see_only_their_own_rows(
    handler: ThreadPoolASGIHandler, tenant: Tenant, other_tenant: Tenant
) -> None:
    key_a, key_b = seed(tenant, 3), seed(other_tenant, 2)
    threads: list[str] = []

    def record_thread(**kwargs: Any) -> None:
        threads.append(threading.current_thread().name)

    request_finished.connect(record_thread)
    try:

        async def alternate() -> list[tuple[int, bytes]]:
            return [await get(handler, "/api/v1/jobs/", key) for key in (key_a, key_b, key_a, key_b)]

        answers = asyncio.run(alternate())
    finally:
        request_finished.disconnect(record_thread)
    assert [status for status, _ in answers] == [200] * 4
    assert [kinds(body) for _, body in answers] == [{tenant.slug}, {other_tenant.slug}] * 2
    assert len(threads) == 4 and len(set(threads)) == 1  # one thread served them all, one after another


def test_the_connection_a_request_leaves_behind_carries_no_tenant(
    handler: ThreadPoolASGIHandler, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Raw SQL without a tenant filter, on the connection tenant A's request used, sees nothing of A."""
    key_a = seed(tenant, 3)
    seed(other_tenant, 2)

    def job_tenants_seen_on_this_thread(scope: Tenant | None) -> list[int]:
        def query() -> list[int]:
            with connection.cursor() as cursor:
                cursor.execute("SELECT DISTINCT tenant_id FROM tenants_job")  # no WHERE on purpose
                return [row[0] for row in cursor.fetchall()]

        if scope is None:
            return query()
        with tenant_context(scope):
            return query()

    async def scenario() -> tuple[list[int], list[int]]:
        assert (await get(handler, "/api/v1/jobs/", key_a))[0] == 200
        run = asyncio.get_running_loop().run_in_executor
        executor = await handler._idle_executors().get()  # the only thread, which served the request
        try:
            return (
                await run(executor, job_tenants_seen_on_this_thread, None),
                await run(executor, job_tenants_seen_on_this_thread, other_tenant),
            )
        finally:
            handler._idle_executors().put_nowait(executor)

    unscoped, as_other = asyncio.run(scenario())
    assert unscoped == []
    assert as_other == [other_tenant.pk]


def test_concurrent_requests_beyond_the_threads_all_get_their_own_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    handler = ThreadPoolASGIHandler(threads=2)
    key_a, key_b = seed(tenant, 3), seed(other_tenant, 2)

    async def burst() -> list[tuple[int, bytes]]:
        return await asyncio.gather(*(get(handler, "/api/v1/jobs/", (key_a, key_b)[i % 2]) for i in range(12)))

    try:
        answers = asyncio.run(burst())
    finally:
        handler.shutdown()
    assert [status for status, _ in answers] == [200] * 12
    assert [kinds(body) for _, body in answers] == [{tenant.slug}, {other_tenant.slug}] * 6


def stream(request: Any) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter([b"one,", b"two,", b"three"]))


urlpatterns = [path("stream/", stream)]


async def events_of(handler: ThreadPoolASGIHandler, path: str, key: str, events: list[str]) -> None:
    async def send(message: dict[str, Any]) -> None:
        events.append(f"sent {message['status']}" if "status" in message else f"body {message.get('body', b'')!r}")

    await call(handler, path, key, send)


@pytest.fixture
def signals_on_threads() -> Iterator[list[str]]:
    events: list[str] = []

    def started(**kwargs: Any) -> None:
        events.append(f"started on {threading.current_thread().name}")

    def finished(**kwargs: Any) -> None:
        events.append(f"finished on {threading.current_thread().name}")

    request_started.connect(started)
    request_finished.connect(finished)
    yield events
    request_started.disconnect(started)
    request_finished.disconnect(finished)


def test_a_request_goes_to_its_thread_once_and_is_finished_before_it_is_sent(
    handler: ThreadPoolASGIHandler, tenant: Tenant, signals_on_threads: list[str]
) -> None:
    key = seed(tenant, 2)
    asyncio.run(events_of(handler, "/api/v1/jobs/", key, signals_on_threads))
    assert signals_on_threads[:2] == ["started on django-0_0", "finished on django-0_0"]
    assert signals_on_threads[2] == "sent 200" and signals_on_threads[3].startswith('body b\'{"count":2')
    assert len(signals_on_threads) == 4  # each signal once


@pytest.mark.urls(__name__)
def test_a_streamed_response_is_finished_after_its_last_part_is_sent(
    handler: ThreadPoolASGIHandler, signals_on_threads: list[str]
) -> None:
    asyncio.run(events_of(handler, "/stream/", "none", signals_on_threads))
    assert signals_on_threads[0] == "started on django-0_0"
    assert signals_on_threads[1:-1] == ["sent 200", "body b'one,'", "body b'two,'", "body b'three'", "body b''"]
    assert signals_on_threads[-1] == "finished on django-0_0"


def test_requests_with_a_session_keep_it_and_keyed_ones_go_without(
    handler: ThreadPoolASGIHandler, tenant: Tenant, owner: User
) -> None:
    """The dashboard's requests (a session cookie) have their user and tenant, as does the API called with the
    session; the widget's and the API's with a key skip the session's middleware and still work."""
    key = seed(tenant, 2)
    client = Client()
    client.force_login(owner)
    cookie = [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())
    ]

    async def scenario() -> list[tuple[int, bytes]]:
        return [
            await get(handler, "/", "", cookie),  # the dashboard's home: a login redirect without the session
            await get(handler, "/api/v1/jobs/", "", cookie),
            await get(handler, "/api/v1/jobs/", key),
            await get(handler, "/api/v1/jobs/", "not-a-key"),
            await get(handler, "/", "", []),
        ]

    home, api_session, api_key, bad_key, anonymous = asyncio.run(scenario())
    assert home[0] == 200 and b"Tenant A Coffee" in home[1]
    assert api_session[0] == 200 and kinds(api_session[1]) == {tenant.slug}
    assert api_key[0] == 200 and kinds(api_key[1]) == {tenant.slug}
    assert bad_key[0] == 401
    assert anonymous[0] == 302


def test_which_requests_go_without_the_session() -> None:
    factory = RequestFactory()
    assert is_sessionless(factory.post("/widget/v1/messages/"))
    assert is_sessionless(factory.get("/api/v1/jobs/", HTTP_AUTHORIZATION="Bearer cx_abc"))
    assert not is_sessionless(factory.get("/api/v1/jobs/"))
    assert not is_sessionless(factory.get("/api/v1/jobs/", HTTP_AUTHORIZATION="Basic abc"))
    assert not is_sessionless(factory.get("/inbox/", HTTP_AUTHORIZATION="Bearer cx_abc"))


def _lifespan_messages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The server's lifespan exchange with the application: start-up, then shutdown."""
    from cxplatform.asgi import application

    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    asyncio.run(application({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    return sent


def test_the_server_starts_and_stops_through_the_lifespan_protocol(settings: Any, monkeypatch: Any) -> None:
    settings.CX_BOT_REPLIES = "worker"  # nothing to warm in this process
    assert _lifespan_messages(monkeypatch) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
