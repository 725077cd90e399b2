"""The admin in a real browser: Playwright driving Debian's Chromium.

Playwright's own browser download cannot reach its servers from this
project's machines, so the test launches the system Chromium
(``apt-get install chromium``). Without it the test skips, except when
``CI=true``, where it fails so a CI run cannot pass without the browser.
Screenshots go to ``test-artifacts/`` (ignored by git).
"""

import os
from pathlib import Path

import pytest

from integrations import fanout as fanout_module
from integrations.models import Delivery
from outbox import aws
from outbox.models import OutboxEvent
from tests.admin_helpers import (
    deliver, failed, hours_ago, login_event, published, signup_event,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
PASSWORD = "browser-test-password-3"

# pytest-django's live server binds to "localhost" unless this is set.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")


def require_chromium():
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: run `apt-get install -y chromium`"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def make_events():
    """Events spread over the last day, two failed, one dead-lettered, and a
    few messages in the queues, so the screenshots show every state."""
    for subject in range(1, 9):
        created = hours_ago(subject * 2.5)
        event = signup_event(
            email=f"user{subject}@example.com", subject=str(subject),
            created_at=created, **published(published_at=created),
        )
        deliver(event, "heap", Delivery.Status.DELIVERED)
        deliver(event, "slack", Delivery.Status.DELIVERED)
        deliver(event, "mailchimp", Delivery.Status.RETRYING, attempts=2)
        for _ in range(subject % 3 + 1):
            login_event(subject=str(subject), created_at=created, **published())
    stuck = []
    for n in range(2):
        event = signup_event(email=f"stuck{n}@example.com", subject=str(10 + n), **failed())
        event.relay_attempts.create(relay="relay-a", error="InvalidParameter: topic")
        stuck.append(event)
    dead = signup_event(email="dead@example.com", subject="20", **published())
    deliver(dead, "mailchimp", Delivery.Status.DEAD_LETTERED)
    sqs = aws.client("sqs")
    for _ in range(3):
        sqs.send_message(QueueUrl=fanout_module.queue_url("heap"), MessageBody="{}")
    sqs.send_message(
        QueueUrl=fanout_module.queue_url("mailchimp", dead_letter=True), MessageBody="{}"
    )
    return stuck


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_admin_retry_and_dashboard(live_server, django_user_model, fanout, settings):
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    django_user_model.objects.create_superuser("ops", "ops@staff.example", PASSWORD)
    stuck = make_events()
    ARTIFACTS.mkdir(exist_ok=True)

    # Django's ORM refuses to run while Playwright's event loop is running in
    # this thread, so the database is read only before and after the browser.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{live_server.url}/admin/login/?next=/admin/outbox/outboxevent/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#result_list")).to_be_visible()
        page.click("#toggle-nav-sidebar")
        page.screenshot(path=ARTIFACTS / "event-list.png", full_page=True)

        page.locator("#changelist-filter").get_by_role("link", name="Failed").click()
        expect(page.locator("#result_list tbody tr")).to_have_count(2)
        page.screenshot(path=ARTIFACTS / "event-list-failed.png", full_page=True)

        page.check("#action-toggle")
        page.select_option("select[name=action]", "retry_events")
        page.click("button[name=index]")
        page.fill("#id_reason", "topic policy fixed")
        page.click("input[value='Yes, retry failed events']")
        expect(page.locator("ul.messagelist")).to_contain_text("Retried 2 event(s)")
        expect(page.locator("#result_list")).to_have_count(0)

        page.goto(f"{live_server.url}/admin/outbox/outboxevent/?status__exact=pending")
        pending_text = page.locator("#result_list").inner_text()

        page.get_by_role("link", name="Dashboard").click()
        expect(page.locator("h1")).to_have_text("Outbox dashboard")
        expect(page.locator("svg.outbox-chart")).to_be_visible()
        pending_figure = page.locator("[data-figure=pending]").inner_text()
        page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
        browser.close()

    for event in stuck:
        assert str(event.id) in pending_text
    # Creating the superuser and logging in recorded pending events too.
    assert pending_figure == str(OutboxEvent.objects.filter(status="pending").count())
    statuses = set(
        OutboxEvent.objects.filter(id__in=[e.id for e in stuck]).values_list(
            "status", flat=True
        )
    )
    assert statuses == {"pending"}
