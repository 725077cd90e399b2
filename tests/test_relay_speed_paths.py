"""Correctness of the relay's fast paths on PostgreSQL.

The NOTIFY waiter, the one-statement claim and the one-statement write-back
are checked for what they do, never for how fast: speed is measured by the
scripts under bench/.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from outbox import signals, store
from outbox.api import record_event
from outbox.models import OutboxEvent
from outbox.publishers import NullPublisher
from outbox.relay import Relay, _NotifyWaiter, _SleepWaiter, make_waiter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notify_settings(settings, postgres):
    settings.OUTBOX = {
        **settings.OUTBOX,
        "NOTIFY": True,
        "NOTIFY_CHANNEL": f"outbox_test_{uuid.uuid4().hex[:8]}",
    }
    return settings


@pytest.fixture
def waiter(notify_settings):
    made = make_waiter("default")
    yield made
    made.close()


def test_make_waiter_listens_when_notify(waiter):
    assert isinstance(waiter, _NotifyWaiter)


def test_make_waiter_sleeps_by_default(db):
    assert isinstance(make_waiter("default"), _SleepWaiter)


def test_waiter_wakes_on_committed_event(waiter):
    with transaction.atomic():
        record_event("test.happened", {"n": 1})

    assert waiter.wait(threading.Event(), timeout=30) is True


def test_waiter_times_out_without_event(waiter):
    assert waiter.wait(threading.Event(), timeout=0.01) is False


def test_waiter_ignores_rolled_back_event(waiter):
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event("test.happened", {"n": 1})
        raise RuntimeError("roll back")

    assert waiter.wait(threading.Event(), timeout=0.2) is False


def test_waiter_survives_terminated_connection(waiter):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [waiter.connection.info.backend_pid])
    first = waiter.wait(threading.Event(), timeout=0.01)
    with transaction.atomic():
        record_event("test.happened", {"n": 1})

    assert first is False
    assert waiter.wait(threading.Event(), timeout=30) is True


def test_relay_run_wakes_on_notify(notify_settings):
    published = threading.Event()

    def on_published(sender, event_ids, **kwargs):
        published.set()

    relay = Relay(publisher=NullPublisher())
    stop = threading.Event()
    # A poll interval far longer than the test timeout: only a notification
    # can end the relay's idle wait in time.
    thread = threading.Thread(target=_run_relay, args=(relay, stop, 3600.0))
    signals.events_published.connect(on_published)
    try:
        thread.start()
        _wait_until_idle(relay)
        with transaction.atomic():
            event = record_event("test.happened", {"n": 1})
        published.wait(timeout=60)
    finally:
        signals.events_published.disconnect(on_published)
        stop.set()
        _notify_once(notify_settings.OUTBOX["NOTIFY_CHANNEL"])
        thread.join(timeout=30)

    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PUBLISHED
    assert relay.waiter.notified_wakeups >= 1


def _run_relay(relay, stop, interval):
    try:
        relay.run(stop, interval=interval)
    finally:
        connections.close_all()


def _wait_until_idle(relay):
    """Block until the relay thread made its waiter and began waiting."""
    for _ in range(600):
        waiter = relay.waiter
        if waiter is not None and waiter.connection is not None:
            if waiter.connection.lock.locked():
                return
        threading.Event().wait(0.05)
    raise AssertionError("relay never started waiting for notifications")


def _notify_once(channel):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [channel])


def _claim(limit=10, relay_id="relay-a"):
    token = uuid.uuid4()
    now = timezone.now()
    events = store.claim_postgresql(
        connection, relay_id, token, now, now + timezone.timedelta(seconds=60), limit, False
    )
    return token, events


def test_claim_statement_leases_oldest_first(postgres):
    created = [record_event("test.happened", {"n": number}) for number in range(5)]
    token, events = _claim(limit=3)

    assert [event.id for event in events] == [event.id for event in created[:3]]
    assert all(event.claim_token == token for event in events)
    assert events[0].data == {"n": 0}
    assert OutboxEvent.objects.filter(claim_token=token).count() == 3


def test_claim_statement_skips_leased_rows(postgres):
    for number in range(4):
        record_event("test.happened", {"n": number})
    _, first = _claim(limit=3)
    _, second = _claim(limit=3, relay_id="relay-b")

    assert len(second) == 1
    assert second[0].id not in {event.id for event in first}


def test_mark_published_writes_each_row(postgres):
    record_event("test.happened", {"n": 1})
    record_event("test.happened", {"n": 2})
    token, events = _claim()
    odd_key = 'outbox-payloads/quote"back\\slash.json'
    published = [(str(events[0].id), "message-1"), (str(events[1].id), "message-2")]

    written = store.mark_published(
        "default", token, timezone.now(), published, {str(events[1].id): odd_key}
    )

    rows = {row.id: row for row in OutboxEvent.objects.all()}
    assert written == 2
    assert rows[events[0].id].sns_message_id == "message-1"
    assert rows[events[1].id].sns_message_id == "message-2"
    assert rows[events[0].id].payload_key == ""
    assert rows[events[1].id].payload_key == odd_key
    assert rows[events[1].id].status == OutboxEvent.Status.PUBLISHED


def test_mark_published_skips_stolen_lease(postgres):
    record_event("test.happened", {"n": 1})
    token, events = _claim()
    OutboxEvent.objects.filter(id=events[0].id).update(claim_token=uuid.uuid4())

    written = store.mark_published(
        "default", token, timezone.now(), [(str(events[0].id), "message-1")], {}
    )

    assert written == 0
    assert OutboxEvent.objects.get().status == OutboxEvent.Status.PENDING
