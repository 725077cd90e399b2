"""The dashboard, ``outbox_stats`` and the metrics endpoint."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from integrations import fanout as fanout_module
from outbox import aws, stats
from outbox.models import OutboxEvent
from tests.admin_helpers import (
    DASHBOARD, PASSWORD, failed, hours_ago, make_staff, published, signup_event,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def fill_outbox():
    """Two pending (oldest 3 h), two published in the last hour, one failed."""
    signup_event(subject="1", created_at=hours_ago(3))
    signup_event(subject="2", created_at=hours_ago(1.5))
    signup_event(subject="3", **published())
    signup_event(subject="4", **published())
    signup_event(subject="5", **published(published_at=hours_ago(2)))
    stuck = signup_event(subject="6", **failed())
    stuck.relay_attempts.create(relay="relay-a", error="InvalidParameter")
    old_failure = signup_event(subject="7", **failed())
    old_failure.relay_attempts.create(
        relay="relay-a", error="InvalidParameter", attempted_at=hours_ago(5)
    )


def fill_queues():
    sqs = aws.client("sqs")
    for _ in range(3):
        sqs.send_message(QueueUrl=fanout_module.queue_url("heap"), MessageBody="{}")
    sqs.send_message(
        QueueUrl=fanout_module.queue_url("slack", dead_letter=True), MessageBody="{}"
    )


def test_outbox_figures_count_backlog():
    fill_outbox()

    figures = stats.outbox_figures()

    assert figures["pending"] == 2
    assert 3 * 3600 - 60 < figures["oldest_pending_age_seconds"] < 3 * 3600 + 60
    assert figures["published_last_hour"] == 2
    assert figures["failed_last_hour"] == 1


def test_hourly_counts_bucket_by_status():
    signup_event(subject="1", created_at=hours_ago(0))
    signup_event(subject="2", created_at=hours_ago(0), **published())
    signup_event(subject="3", created_at=hours_ago(30))

    hourly = stats.hourly_counts()

    assert len(hourly) == 24
    assert hourly[-1]["counts"] == {"pending": 1, "published": 1, "failed": 0}
    assert sum(sum(bucket["counts"].values()) for bucket in hourly) == 2


def test_dashboard_shows_outbox_and_queues(client, fanout):
    make_staff("viewer", "outbox.view_outboxevent")
    client.login(username="viewer", password=PASSWORD)
    fill_outbox()
    fill_queues()

    response = client.get(reverse(DASHBOARD))
    page = response.content.decode()
    queues = {row["integration"]: row for row in response.context["queues"]}

    assert response.status_code == 200
    assert queues["heap"]["figures"]["waiting"] == 3
    assert queues["slack"]["figures"]["dead_letter"] == 1
    assert queues["slack"]["dead_letter_oldest_age"] != "-"
    assert queues["mailchimp"]["figures"]["in_flight"] == 0
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert 'data-status="published"' in page
    assert "Redrive" not in page


def test_dashboard_reports_missing_queue(admin_client, aws_settings):
    response = admin_client.get(reverse(DASHBOARD))
    queues = {row["integration"]: row for row in response.context["queues"]}

    assert "does not exist" in queues["heap"]["figures"]["error"]


def test_dashboard_needs_view_permission(client):
    make_staff("nobody")
    client.login(username="nobody", password=PASSWORD)

    assert client.get(reverse(DASHBOARD)).status_code == 403


def test_outbox_stats_json(fanout):
    fill_outbox()
    fill_queues()
    output = StringIO()

    call_command("outbox_stats", "--json", stdout=output)
    figures = json.loads(output.getvalue())

    assert figures["outbox"]["pending"] == 2
    assert figures["outbox"]["failed_last_hour"] == 1
    assert figures["integrations"]["heap"]["waiting"] == 3
    assert figures["integrations"]["slack"]["dead_letter"] == 1


def test_outbox_stats_text(fanout):
    fill_outbox()
    output = StringIO()

    call_command("outbox_stats", stdout=output)
    text = output.getvalue()

    assert "pending               2" in text
    assert "oldest pending age    3 h 0 min" in text
    assert "heap: waiting=0 in_flight=0 dead_letter=0" in text


def test_metrics_endpoint_exports_gauges(client, fanout):
    fill_outbox()
    fill_queues()

    response = client.get(reverse("outbox:metrics"))
    text = response.content.decode()

    assert response.status_code == 200
    assert "outbox_events_pending 2.0" in text
    assert 'outbox_integrations_waiting{integration="heap"} 3.0' in text
    assert 'outbox_integrations_dead_letter{integration="slack"} 1.0' in text


def test_metrics_token_rejects_missing_header(client, settings, fanout):
    settings.OUTBOX = {**settings.OUTBOX, "METRICS_TOKEN": "s3cret"}

    rejected = client.get(reverse("outbox:metrics"))
    accepted = client.get(reverse("outbox:metrics"), HTTP_AUTHORIZATION="Bearer s3cret")

    assert rejected.status_code == 401
    assert accepted.status_code == 200


def test_format_age_units():
    assert stats.format_age(None) == "-"
    assert stats.format_age(42) == "42 s"
    assert stats.format_age(600) == "10 min"
    assert stats.format_age(3 * 3600 + 300) == "3 h 5 min"
    assert stats.format_age(timedelta(days=3).total_seconds()) == "3 d 0 h"


def test_failed_last_hour_ignores_retried_events():
    event = signup_event(subject="1", **failed())
    event.relay_attempts.create(relay="relay-a", error="x")
    OutboxEvent.objects.filter(id=event.id).update(status="pending")

    assert stats.outbox_figures(timezone.now())["failed_last_hour"] == 0
