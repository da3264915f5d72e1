"""The inbox's context panel shows personalization's view of the customer (RFM segment, cluster, rule segments,
predicted value, churn band and reasons), with a pinned query count and nothing of another tenant."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chatbot.models import Conversation, Message, Sender
from journeys.models import Customer
from personalization.models import ClusterLabel, CustomerScore, RuleSegment, SegmentMember
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _conversation(tenant: Tenant, customer: Customer | None, visitor: str) -> Conversation:
    with tenant_context(tenant):
        conversation = Conversation.objects.create(customer=customer, visitor_id=visitor, state="waiting")
        Message.objects.create(conversation=conversation, sender=Sender.VISITOR, text="Where is my parcel?")
        return conversation


@pytest.fixture
def scored(tenant: Tenant, other_tenant: Tenant) -> dict[str, Any]:
    """Tenant A's customer Ada, scored and in two rule segments; tenant B has look-alike data of its own."""
    with tenant_context(tenant):
        ada = Customer.objects.create(external_id="ada", name="Ada Lovelace", email="ada@example.com")
        CustomerScore.objects.create(
            customer=ada,
            orders=7,
            historic_value=410.0,
            predicted_value_365d=1234.5,
            churn_risk=0.81,
            churn_band="high",
            reasons=["no order for 120 days", "usually orders every 30 days"],
            r_score=1,
            f_score=4,
            m_score=5,
            rfm_segment="Can't lose them",
            cluster=2,
        )
        ClusterLabel.objects.create(cluster_id=2, name="Weekend espresso fans", description="buys on weekends")
        for name in ("Coffee club", "Big spenders"):
            SegmentMember.objects.create(segment=RuleSegment.objects.create(name=name, definition={}), customer=ada)
        RuleSegment.objects.create(name="Tea drinkers", definition={})  # Ada is not a member
    with tenant_context(other_tenant):
        bob = Customer.objects.create(external_id="ada", name="Other Ada")
        CustomerScore.objects.create(customer=bob, predicted_value_365d=999999.0, rfm_segment="Champions", cluster=2)
        ClusterLabel.objects.create(cluster_id=2, name="Tenant B cluster name")
        leaky = RuleSegment.objects.create(name="Tenant B segment", definition={})
        SegmentMember.objects.create(segment=leaky, customer=bob)
    with tenant_context(other_tenant):
        # A row of tenant B that points at tenant A's customer (a bug elsewhere) must still never show.
        SegmentMember.objects.create(segment=leaky, customer_id=ada.pk)
    return {"ada": ada, "conversation": _conversation(tenant, ada, "cxw_ada")}


def test_panel_shows_segments_value_and_churn_reasons(scored: dict[str, Any], agent: User) -> None:
    page = client_for(agent).get(f"/inbox/{scored['conversation'].pk}/").content.decode()
    panel = page[page.index('id="context-predictions-h"') :]
    assert "Can&#x27;t lose them (R1 F4 M5)" in panel
    assert "Weekend espresso fans" in panel
    assert "1234.50" in panel and "predicted next 365 days" in panel
    assert 'class="badge churn-high">High</span> 81%' in panel
    assert "<li>no order for 120 days</li>" in panel and "<li>usually orders every 30 days</li>" in panel
    assert panel.index("Big spenders") < panel.index("Coffee club")  # by name
    assert "Tea drinkers" not in panel


def test_panel_never_shows_another_tenants_data(scored: dict[str, Any], agent: User, other_owner: User) -> None:
    page = client_for(agent).get(f"/inbox/{scored['conversation'].pk}/").content.decode()
    for foreign in ("Tenant B cluster name", "Tenant B segment", "999999", "Champions", "Other Ada"):
        assert foreign not in page
    # And tenant B's agent cannot open tenant A's conversation at all.
    assert client_for(other_owner).get(f"/inbox/{scored['conversation'].pk}/").status_code == 404


def test_unscored_customer_and_anonymous_visitor(tenant: Tenant, agent: User) -> None:
    with tenant_context(tenant):
        new = Customer.objects.create(external_id="new", name="New Customer")
    client = client_for(agent)
    page = client.get(f"/inbox/{_conversation(tenant, new, 'cxw_new').pk}/").content.decode()
    assert "Not scored yet" in page and 'Segments:</span> <span class="muted">none' in page
    anonymous = client.get(f"/inbox/{_conversation(tenant, None, 'cxw_anon').pk}/").content.decode()
    assert "Anonymous visitor" in anonymous and "context-predictions" not in anonymous


def test_conversation_view_query_count_is_pinned(
    scored: dict[str, Any], agent: User, tenant: Tenant, django_assert_num_queries: Any
) -> None:
    client: Client = client_for(agent)
    url = f"/inbox/{scored['conversation'].pk}/"
    client.get(url)  # warm caches (session, membership)
    with django_assert_num_queries(QUERIES):
        assert client.get(url).status_code == 200
    # More history, orders-free: the count does not grow with the transcript or the segments.
    with tenant_context(tenant):
        for i in range(5):
            Message.objects.create(conversation=scored["conversation"], sender=Sender.VISITOR, text=f"more {i}")
            SegmentMember.objects.create(
                segment=RuleSegment.objects.create(name=f"extra {i}", definition={}), customer=scored["ada"]
            )
    with django_assert_num_queries(QUERIES):
        assert client.get(url).status_code == 200


QUERIES = 23  # session, user, membership, inbox lists and counts, transcript, context (3 for predictions)
