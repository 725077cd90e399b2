"""Retention: purge_published and the purge_outbox command."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.models import Delivery, DeliveryAttempt
from outbox import claimcheck
from outbox.models import OutboxEvent, RelayAttempt
from outbox.purge import purge_published
from tests.admin_helpers import deliver, failed, hours_ago, published, signup_event

pytestmark = pytest.mark.django_db

DAY = 24


def old_published(subject, days=10, **fields):
    moment = hours_ago(days * DAY)
    event = signup_event(
        subject=subject, created_at=moment, **published(published_at=moment, **fields)
    )
    delivery = deliver(event, "heap", Delivery.Status.DELIVERED)
    delivery.history.create(consumer="heap@host", outcome="delivered")
    event.relay_attempts.create(relay="relay-a", error="Throttling")
    return event


def test_purge_removes_old_published_with_related(payload_storage):
    old = [old_published(str(n)) for n in range(5)]
    recent = signup_event(subject="9", **published())

    result = purge_published(timedelta(days=7), batch_size=2)

    assert result.events == 5
    assert result.batches == 3
    assert result.related == {
        "integrations.Delivery": 5, "integrations.DeliveryAttempt": 5,
        "outbox.RelayAttempt": 5,
    }
    assert not OutboxEvent.objects.filter(id__in=[e.id for e in old]).exists()
    assert OutboxEvent.objects.filter(id=recent.id).exists()
    assert Delivery.objects.count() == 0
    assert DeliveryAttempt.objects.count() == 0
    assert RelayAttempt.objects.count() == 0


def test_purge_keeps_pending_and_failed(payload_storage):
    pending = signup_event(subject="1", created_at=hours_ago(30 * DAY))
    stuck = signup_event(subject="2", created_at=hours_ago(30 * DAY), **failed())

    result = purge_published(timedelta(days=7))

    assert result.events == 0
    assert set(OutboxEvent.objects.values_list("id", flat=True)) >= {pending.id, stuck.id}


def test_purge_deletes_claim_check_payloads(payload_storage):
    event = old_published("1", payload_key="outbox-payloads/big.json")
    claimcheck.store_payload(event.payload_key, b'{"big": true}')

    result = purge_published(timedelta(days=7))

    assert result.payloads == 1
    assert not (payload_storage / "outbox-payloads" / "big.json").exists()


def test_purge_archives_json_lines(payload_storage, tmp_path):
    events = [old_published(str(n)) for n in range(3)]
    archive = FileSystemStorage(location=str(tmp_path / "archive"))

    result = purge_published(timedelta(days=7), batch_size=2, archive_storage=archive)
    lines = []
    for name in result.archives:
        with archive.open(name) as handle:
            lines.extend(json.loads(line) for line in handle.read().decode().splitlines())

    assert len(result.archives) == 2
    assert sorted(line["id"] for line in lines) == sorted(str(e.id) for e in events)
    assert lines[0]["data"]["email"] == "ada@example.com"
    assert lines[0]["deliveries"][0]["integration"] == "heap"
    assert lines[0]["deliveries"][0]["history"][0]["outcome"] == "delivered"
    assert lines[0]["relay_attempts"][0]["error"] == "Throttling"


def test_purge_batches_bound_each_delete(payload_storage):
    for n in range(6):
        old_published(str(n))

    with CaptureQueriesContext(connection) as queries:
        purge_published(timedelta(days=7), batch_size=3)
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]

    assert deletes
    for sql in deletes:
        assert " IN (" in sql, sql


def test_purge_reports_progress(payload_storage):
    for n in range(3):
        old_published(str(n))
    seen = []

    purge_published(timedelta(days=7), batch_size=1, progress=lambda r: seen.append(r.events))

    assert seen == [1, 2, 3]


def test_purge_command_prints_summary(payload_storage, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "outbox_archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "archive")},
        },
    }
    old_published("1")
    output = StringIO()

    call_command("purge_outbox", "--older-than", "7", "--archive", stdout=output,
                 stderr=StringIO())
    text = output.getvalue()

    assert "Removed 1 event(s) published before" in text
    assert "Removed 1 integrations.Delivery row(s)." in text
    assert "Archived to outbox-archive/" in text
    assert list((tmp_path / "archive" / "outbox-archive").iterdir())


def test_purge_command_rejects_unknown_storage(payload_storage):
    with pytest.raises(CommandError, match="storage 'nowhere' is not configured"):
        call_command("purge_outbox", "--older-than", "7", "--archive",
                     "--archive-storage", "nowhere")


def test_purge_command_rejects_negative_days():
    for value in ("-1", "nan", "inf"):
        with pytest.raises(CommandError, match="--older-than must be a number of days"):
            call_command("purge_outbox", "--older-than", value)


def test_purge_keeps_recently_republished(payload_storage):
    replayed = signup_event(subject="1", created_at=hours_ago(30 * DAY), **published())

    result = purge_published(timedelta(days=7))

    assert result.events == 0
    assert OutboxEvent.objects.filter(id=replayed.id).exists()
