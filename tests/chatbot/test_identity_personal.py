"""identify() and personal answers: only an identity with a valid HMAC links the visitor to a customer and lets
the bot greet by name, tell order status or recommend; an unverified one is a claim agents see, and it never
changes or reveals an existing customer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from chatbot.models import Conversation
from chatbot.services import identity_hash
from journeys.models import Customer, Order, OrderStatus, VisitorIdentity
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.chatbot.conftest import Widget
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(tenant: Tenant) -> Customer:
    """An existing customer with an order, as the business's data import made her."""
    with tenant_context(tenant):
        customer = Customer.objects.create(
            external_id="cust-42", name="Ada Lovelace", email="ada@example.com", consent_personalization=True
        )
        Order.objects.create(
            external_id="A-777",
            customer=customer,
            placed_at=timezone.now() - timedelta(days=2),
            currency="USD",
            status=OrderStatus.PAID,
        )
        return customer


def _bot_text(body: dict[str, object]) -> str:
    messages = body["messages"]
    assert isinstance(messages, list)
    return " ".join(m["text"] for m in messages if m["sender"] == "bot")


def test_an_unverified_identity_of_an_existing_customer_reveals_nothing(
    widget: Widget, kb: None, tenant: Tenant, ada: Customer, agent: User
) -> None:
    widget.say("hello")
    response = widget.post("identify/", {"id": "cust-42", "name": "Mallory", "email": "mallory@evil.test"})
    assert response.status_code == 200 and response.json() == {"verified": False}

    greeting = _bot_text(widget.say("hi"))
    assert "Ada" not in greeting and "Mallory" not in greeting
    order = _bot_text(widget.say("where is my order?"))
    assert "A-777" not in order and "sign in" in order
    picks = _bot_text(widget.say("can you recommend something?"))
    assert "signed in" in picks

    with tenant_context(tenant):
        ada.refresh_from_db()
        assert (ada.name, ada.email) == ("Ada Lovelace", "ada@example.com")  # not overwritten
        assert not VisitorIdentity.objects.filter(customer=ada).exists()  # the visitor is not linked to her
        conversation = Conversation.objects.get()
    assert conversation.customer_id is None and conversation.customer_verified is False
    assert conversation.claimed_identity == {"id": "cust-42", "name": "Mallory", "email": "mallory@evil.test"}

    # The agent sees the claim, marked unverified, and none of Ada's data beside the conversation.
    page = client_for(agent).get(f"/inbox/{conversation.pk}/").content.decode()
    assert "unverified" in page and "Mallory" in page and "cust-42" in page
    assert "A-777" not in page and "ada@example.com" not in page


def test_a_claim_made_before_the_first_message_is_carried_to_the_conversation(
    widget: Widget, kb: None, tenant: Tenant, ada: Customer, api_client: APIClient
) -> None:
    assert widget.post("identify/", {"id": "cust-42", "name": "Ada"}).json() == {"verified": False}
    greeting = _bot_text(widget.say("hello"))
    assert "Ada" not in greeting
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    body = api_client.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert body["customer"] is None and body["customer_verified"] is False
    assert body["claimed_identity"]["id"] == "cust-42"


def test_a_verified_identity_gets_personal_answers(widget: Widget, kb: None, tenant: Tenant, ada: Customer) -> None:
    widget.say("hello")
    good = identity_hash(secret=widget.key.identity_secret, external_id="cust-42")
    assert widget.post("identify/", {"id": "cust-42", "hash": good}).json() == {"verified": True}

    assert _bot_text(widget.say("hi")).startswith("Hi Ada!")
    order = _bot_text(widget.say("where is my order?"))
    assert "A-777" in order and "being prepared for shipping" in order
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    assert conversation.customer_id == ada.pk and conversation.customer_verified is True
    assert conversation.claimed_identity is None


def test_a_later_claim_does_not_replace_a_verified_identity(
    widget: Widget, kb: None, tenant: Tenant, ada: Customer
) -> None:
    good = identity_hash(secret=widget.key.identity_secret, external_id="cust-42")
    widget.post("identify/", {"id": "cust-42", "hash": good})
    with tenant_context(tenant):
        Customer.objects.create(external_id="cust-99", name="Victim", email="victim@example.com")
    assert widget.post("identify/", {"id": "cust-99", "name": "Eve"}).json() == {"verified": False}
    assert "A-777" in _bot_text(widget.say("where is my order?"))  # still Ada's, never cust-99's
    with tenant_context(tenant):
        assert Conversation.objects.get().customer_id == ada.pk
        assert Customer.objects.get(external_id="cust-99").name == "Victim"


def test_a_new_conversation_of_a_verified_visitor_is_personal_from_the_start(
    widget: Widget, kb: None, tenant: Tenant, ada: Customer
) -> None:
    good = identity_hash(secret=widget.key.identity_secret, external_id="cust-42")
    widget.post("identify/", {"id": "cust-42", "hash": good})  # before any conversation
    assert _bot_text(widget.say("hello")).startswith("Hi Ada!")
    with tenant_context(tenant):
        assert Conversation.objects.get().customer_verified is True
