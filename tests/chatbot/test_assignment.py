"""Auto-assignment: round-robin among online, available agents, each up to the tenant's cap of open
conversations; the rest wait (oldest first) until an agent frees room or comes online."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone

from chatbot.models import AgentPresence, Conversation, ConversationState, WidgetSettings
from chatbot.services import widget_settings_get
from tenants.context import tenant_context
from tenants.models import Role, Tenant, User, WidgetKey
from tests.chatbot.conftest import ORIGIN, Widget
from tests.chatbot.test_sockets import _inbox_socket, _receive_until, _session
from tests.conftest import add_member, client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def auto(tenant: Tenant) -> WidgetSettings:
    with tenant_context(tenant):
        look = widget_settings_get()
        look.auto_assign, look.agent_cap = True, 2
        look.save()
        return look


def _agent(tenant: Tenant, n: int) -> tuple[User, Client]:
    user = make_user(f"agent{n}@tenant-a.test", f"Agent {n}")
    add_member(tenant, user, Role.AGENT)
    return user, client_for(user)


def _available(client: Client, on: bool = True) -> None:
    response = client.post("/inbox/availability/", {"available": "on" if on else "off", "next": "/inbox/"})
    assert response.status_code == 302


def _ask_for_person(key: WidgetKey) -> Widget:
    w = Widget(key)
    w.start()
    w.say("I want to talk to a person")
    return w


def _assignees(tenant: Tenant) -> list[int | None]:
    """Assignee per conversation, oldest conversation first."""
    with tenant_context(tenant):
        return list(Conversation.objects.order_by("id").values_list("assignee_id", flat=True))


def test_round_robin_up_to_the_cap_then_waiting_oldest_first(
    widget_key: WidgetKey, kb: None, tenant: Tenant, auto: WidgetSettings
) -> None:
    (a1, c1), (a2, c2) = _agent(tenant, 1), _agent(tenant, 2)
    _available(c1)
    _available(c2)
    for _ in range(5):
        _ask_for_person(widget_key)
    assert _assignees(tenant) == [a1.pk, a2.pk, a1.pk, a2.pk, None]  # two each, the fifth waits
    with tenant_context(tenant):
        fifth = Conversation.objects.order_by("id").last()
        assert fifth is not None and fifth.state == ConversationState.WAITING
    _ask_for_person(widget_key)  # a sixth, newer, also waits

    # Agent 2 resolves one: they get the oldest waiting conversation, not the newest.
    with tenant_context(tenant):
        first_of_a2 = Conversation.objects.filter(assignee=a2).order_by("id").first()
    assert first_of_a2 is not None
    assert c2.post(f"/inbox/{first_of_a2.pk}/resolve/").status_code == 302
    assert _assignees(tenant)[4] == a2.pk and _assignees(tenant)[5] is None

    # A third agent comes online: the remaining waiting one is theirs.
    a3, c3 = _agent(tenant, 3)
    _available(c3)
    assert _assignees(tenant)[5] == a3.pk


def test_switching_auto_assignment_on_shares_the_queue_in_turn(
    owner_client: Client, widget_key: WidgetKey, kb: None, tenant: Tenant
) -> None:
    (a1, c1), (a2, c2) = _agent(tenant, 1), _agent(tenant, 2)
    _available(c1)
    _available(c2)
    for _ in range(5):
        _ask_for_person(widget_key)
    assert _assignees(tenant) == [None] * 5  # auto-assignment is off by default
    response = owner_client.post(
        "/settings/widget/",
        {"bot_name": "Beany", "color": "#2f6fdf", "greeting": "Hi!", "allowed_origins": ORIGIN,
         "after_resolved": "reopen", "auto_assign": "on", "agent_cap": "2"},
    )  # fmt: skip
    assert response.status_code == 302
    assert _assignees(tenant) == [a1.pk, a2.pk, a1.pk, a2.pk, None]


def test_away_offline_and_off_agents_get_nothing(
    widget_key: WidgetKey, kb: None, tenant: Tenant, auto: WidgetSettings
) -> None:
    (_, c1), (a2, c2) = _agent(tenant, 1), _agent(tenant, 2)
    _available(c1)
    _available(c2)
    _available(c1, on=False)  # agent 1 is away
    with tenant_context(tenant):  # agent 2 closed the inbox long ago (no heartbeat since)
        AgentPresence.objects.filter(user=a2).update(last_seen=timezone.now() - timedelta(minutes=5))
    _ask_for_person(widget_key)
    assert _assignees(tenant) == [None]
    with tenant_context(tenant):
        look = widget_settings_get()
        look.auto_assign = False
        look.save()
    _available(c1)  # back, but the tenant does not auto-assign
    _ask_for_person(widget_key)
    assert _assignees(tenant) == [None, None]
    page = c1.get("/inbox/?view=waiting").content.decode()
    assert "Become available" not in page and "Go away" not in page  # no toggle without auto-assignment


def test_the_inbox_shows_the_availability_toggle(tenant: Tenant, auto: WidgetSettings) -> None:
    _, client = _agent(tenant, 1)
    assert "Go away" in client.get("/inbox/").content.decode()  # available by default
    _available(client, on=False)
    assert "Become available" in client.get("/inbox/").content.decode()


def test_reassigning_frees_room_for_the_previous_agent(
    widget_key: WidgetKey, kb: None, tenant: Tenant, auto: WidgetSettings, agent: User
) -> None:
    with tenant_context(tenant):
        look = widget_settings_get()
        look.agent_cap = 1
        look.save()
    a1, c1 = _agent(tenant, 1)
    _available(c1)
    _ask_for_person(widget_key)
    _ask_for_person(widget_key)
    assert _assignees(tenant) == [a1.pk, None]
    with tenant_context(tenant):
        first = Conversation.objects.order_by("id").first()
    assert first is not None
    assert client_for(agent).post(f"/inbox/{first.pk}/assign/").status_code == 302  # another agent takes it
    assert _assignees(tenant) == [agent.pk, a1.pk]


@pytest.mark.django_db(transaction=True)
def test_opening_the_inbox_brings_an_agent_online_and_closing_it_takes_them_off(
    widget_key: WidgetKey, kb: None, tenant: Tenant, auto: WidgetSettings, agent: User
) -> None:
    waiting = _ask_for_person(widget_key)
    assert _assignees(tenant) == [None]
    cookie = _session(agent)

    async def run() -> None:
        ws = _inbox_socket(cookie)
        assert (await ws.connect())[0]
        while True:  # connecting gave the agent the waiting conversation, and the list hears it
            event = await _receive_until(ws, "conversation")
            if event["conversation"]["state"] == "assigned":
                break
        assert event["conversation"]["assignee_id"] == agent.pk
        await ws.send_json_to({"type": "heartbeat"})
        await ws.disconnect()

    async_to_sync(run)()
    assert _assignees(tenant) == [agent.pk]
    with tenant_context(tenant):
        presence = AgentPresence.objects.get(user=agent)
    assert presence.last_seen is None  # offline: nothing more is assigned to them
    waiting.say("I still need a person")  # same conversation, already assigned
    _ask_for_person(widget_key)
    assert _assignees(tenant) == [agent.pk, None]
