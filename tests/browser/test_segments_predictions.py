"""Segments and Predictions pages in a real browser: RFM grid, clusters (renamed), charts, at-risk customers,
model card, training from the dashboard."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from personalization import services
from personalization.rules.services import rule_segment_create
from tenants.context import tenant_context
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD
from tests.personalization.conftest import DEMO_END, seed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_segments_and_predictions_pages(page, live_server, tenant, owner, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed(tenant, 700)
    with tenant_context(tenant):
        services.pipeline_start(params={"cutoff": DEMO_END.isoformat()})
        risky = {"all": [{"field": "churn_band", "op": "in", "value": ["high", "medium"]}]}
        rule_segment_create(name="Churn risk high or medium", definition=risky, created_by=None)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name=tenant.name).wait_for()

    page.get_by_role("link", name="Segments", exact=True).click()
    page.get_by_role("heading", name="RFM grid").wait_for()
    expect(page.locator(".rfm-cell").first).to_be_visible()
    assert page.locator(".rfm-grid .rfm-cell").count() == 25
    first_name = page.locator("form.rename input[name=name]").first
    first_name.fill("Espresso regulars")
    page.locator("form.rename").first.get_by_role("button", name="Save").click()
    expect(page.get_by_text("is now called “Espresso regulars”")).to_be_visible()
    expect(page.locator("td strong", has_text="Espresso regulars")).to_be_visible()
    screenshot(page, "segments")

    page.get_by_role("link", name="Predictions", exact=True).click()
    page.get_by_role("heading", name="High-value customers at risk").wait_for()
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('churn-chart'))")
    bars = "() => Chart.getChart(document.getElementById('value-chart')).data.datasets[0].data.length"
    assert page.evaluate(bars) > 3
    rows = page.locator("section[aria-labelledby=risk-h] tbody tr")
    assert rows.count() >= 1
    assert "no order for" in rows.first.inner_text() or "only" in rows.first.inner_text()
    screenshot(page, "predictions")

    rows.first.get_by_role("link").click()
    page.get_by_role("heading", name="Predictions and segments").wait_for()
    panel = page.locator("section[aria-labelledby=scores-h]")
    expect(panel).to_contain_text("Churn risk")
    expect(panel).to_contain_text("Support contacts")
    expect(panel.locator("ul.rule-segments")).to_contain_text("Churn risk high or medium")
    screenshot(page, "customer-scores")
    page.go_back()

    page.get_by_role("button", name="Train now").click()
    expect(page.get_by_text("Training started")).to_be_visible()
    expect(page.locator("#run-status .badge").first).to_have_text("Succeeded")

    page.get_by_role("link", name="All model cards").click()
    page.get_by_role("link", name="v2").first.click()
    page.get_by_role("heading", name="Checks").wait_for()
    # The clustering's card reads as clusters and the k chosen, not as raw arrays.
    rows = page.locator("#model-clusters tbody tr")
    expect(rows.first).to_be_visible()
    sizes = [int(n) for n in page.locator("#model-clusters tbody td:nth-child(2)").all_inner_texts()]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) > 0
    expect(page.locator("#model-silhouettes .badge")).to_have_text("chosen")
    expect(page.get_by_text("sizes.0")).to_be_hidden()  # the raw parameters are folded away
    screenshot(page, "model-card")
