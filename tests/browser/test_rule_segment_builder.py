"""Build a nested rule segment in the browser, watch the live count change, save it and see its members."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from personalization.models import RuleSegment
from tenants.context import tenant_context
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD
from tests.personalization.rules.conftest import World, world  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_nested_segment_with_live_count(page, live_server, world: World, owner, settings) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Tenant A Coffee").wait_for()

    page.goto("/segments/rules/")
    page.get_by_role("link", name="New segment").first.click()
    count = page.locator("#live-count-value")
    expect(count).to_have_text("4")  # an empty segment: everyone in tenant A (never tenant B's Eve)
    page.get_by_label("Segment name").fill("Browsed this week, no order")

    # 1. viewed a product in the last 7 days
    page.get_by_role("button", name="+ Condition").click()
    first = page.locator(".rb-cond").nth(0)
    offered = set(first.get_by_label("Field").locator("option").all_inner_texts())
    features = {"Tenure (days)", "Average days between orders", "Events in the last 30 days", "Support contacts",
                "CSAT average", "Share of spend in a category"}  # fmt: skip
    assert features <= offered, features - offered
    first.get_by_label("Field").select_option("event")
    first.get_by_label("Event type").select_option("product_view")
    first.get_by_label("Operator").select_option("at_least")
    first.get_by_label("Times").fill("1")
    first.get_by_label("Window in days").fill("7")
    expect(count).to_have_text("2")  # Ana and Dee

    # 2. a nested ANY group: placed no order in the last 7 days, or an email at nobody.test
    page.locator(".rb-root > .rb-group-actions").get_by_role("button", name="+ Group").click()
    group = page.locator(".rb-root .rb-group").nth(0)
    group.get_by_label("Match all or any").select_option("any")
    inner = group.locator(".rb-cond").nth(0)
    inner.get_by_label("Value").fill("")  # an empty value is a problem, named inline
    expect(inner.locator(".rb-error")).to_contain_text("non-empty text")
    expect(page.locator("#live-count-note")).to_contain_text("Fix the marked conditions")
    screenshot(page, "rule-segment-builder-problem")
    inner.get_by_label("Field").select_option("orders_in_window")
    inner.get_by_label("Operator").select_option("none")
    inner.get_by_label("Window in days").fill("7")
    group.get_by_role("button", name="+ Condition").click()
    second = group.locator(".rb-cond").nth(1)
    second.get_by_label("Operator").select_option("ends_with")
    second.get_by_label("Value").fill("@nobody.test")
    expect(count).to_have_text("1")  # Dee only
    expect(inner.locator(".rb-error")).to_be_hidden()
    screenshot(page, "rule-segment-builder")

    # NOT on the nested group flips it: viewed this week AND ordered this week -> Ana
    group.get_by_label("exclude (NOT)").check()
    expect(count).to_have_text("1")
    group.get_by_label("exclude (NOT)").uncheck()
    expect(count).to_have_text("1")

    page.get_by_role("button", name="Save segment").click()
    page.get_by_role("heading", name="Browsed this week, no order").wait_for()
    members = page.locator("#members-h").locator("xpath=..")
    expect(members.get_by_role("link", name="Dee")).to_be_visible()
    expect(members.get_by_role("link", name="Ana")).to_have_count(0)
    screenshot(page, "rule-segment-members")

    with tenant_context(world.tenant):
        segment = RuleSegment.objects.get(name="Browsed this week, no order")
    assert segment.member_count == 1
    assert segment.definition == {
        "all": [
            {"field": "event", "op": "at_least", "value": 1, "event_type": "product_view", "days": 7},
            {"any": [
                {"field": "orders_in_window", "op": "none", "days": 7},
                {"field": "email", "op": "ends_with", "value": "@nobody.test"},
            ]},
        ]
    }  # fmt: skip

    # edit it again: the builder loads the saved tree
    page.get_by_role("link", name="Edit").click()
    expect(page.locator(".rb-cond")).to_have_count(3)
    expect(count).to_have_text("1")
    page.goto("/segments/rules/")
    expect(page.get_by_role("link", name="Browsed this week, no order")).to_be_visible()
    screenshot(page, "rule-segment-list")

    # a computed feature with its own parameter: the share of spend in a category
    page.get_by_role("link", name="New segment").first.click()
    expect(count).to_have_text("4")
    page.get_by_role("button", name="+ Condition").click()
    cond = page.locator(".rb-cond").nth(0)
    cond.get_by_label("Field").select_option("category_share")
    cond.get_by_label("Category").select_option("Coffee")
    cond.get_by_label("Operator").select_option("gt")
    cond.get_by_label("Value").fill("0.5")
    expect(count).to_have_text("1")  # Ana: 40 of her 60 on coffee
    cond.get_by_label("Category").select_option("Equipment")
    expect(count).to_have_text("1")  # Bob
