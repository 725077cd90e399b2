"""The relay against the moto server, and its bookkeeping with a scripted publisher."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from outbox import aws, signals
from outbox.api import record_event
from outbox.messages import OutgoingMessage
from outbox.models import OutboxEvent, RelayAttempt
from outbox.publishers import Publisher, PublishResult, pack_batches
from outbox.relay import Relay, retry_delay


class ScriptedPublisher(Publisher):
    """In-memory publisher whose outcome per event id the test decides."""

    def __init__(self, outcomes=None):
        self.outcomes = outcomes or {}
        self.published: list[OutgoingMessage] = []

    def publish(self, messages):
        results = []
        for message in messages:
            outcome = self.outcomes.get(message.event_id, "ok")
            if outcome == "ok":
                self.published.append(message)
                results.append(PublishResult(message.event_id, message_id=f"m-{message.event_id}"))
            elif outcome == "outage":
                results.append(PublishResult(message.event_id, error="unreachable", outage=True))
            else:
                results.append(PublishResult(message.event_id, error=outcome))
        return results


def drain_queue(queue_url, expected=0, timeout=15.0):
    """Receive and delete until ``expected`` messages came and a 1 s poll is empty.

    LocalStack delivers from SNS to SQS after the publish returns, so an
    empty first receive does not mean nothing is coming.
    """
    sqs = aws.client("sqs")
    bodies = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        if not messages and len(bodies) >= expected:
            break
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@pytest.mark.django_db
def test_relay_publishes_batches_to_sns(fanout):
    events = [record_event("user.signed_up", {"n": i}, subject=i) for i in range(25)]
    call_command("relay_outbox", "--once", "--batch-size", "10")

    published = OutboxEvent.objects.filter(status="published")
    assert published.count() == 25
    assert all(event.sns_message_id for event in published)
    assert all(event.published_at for event in published)
    heap = next(q for q in fanout.queues if q.integration == "heap")
    received = drain_queue(heap.queue_url, expected=25)
    assert sorted(body["id"] for body in received) == sorted(str(e.id) for e in events)


@pytest.mark.django_db
def test_filter_policy_routes_login_to_heap_only(fanout):
    record_event("user.logged_in", {"user_id": 1}, subject=1)
    call_command("relay_outbox", "--once")

    expected = {"heap": 1, "mailchimp": 0, "slack": 0}
    counts = {
        queue.integration: len(drain_queue(queue.queue_url, expected[queue.integration]))
        for queue in fanout.queues
    }
    assert counts == expected


@pytest.mark.django_db
def test_relay_orders_claims_oldest_first():
    now = timezone.now()
    newer = record_event("a.b", subject=1)
    older = record_event("a.b", subject=2)
    OutboxEvent.objects.filter(id=older.id).update(created_at=now - timedelta(minutes=5))
    publisher = ScriptedPublisher()

    Relay(batch_size=1, publisher=publisher).run_once()

    assert [m.event_id for m in publisher.published] == [str(older.id)]
    assert OutboxEvent.objects.get(id=newer.id).status == "pending"


@pytest.mark.django_db
def test_rejected_entry_schedules_retry_with_backoff():
    event = record_event("a.b", subject=1)
    publisher = ScriptedPublisher({str(event.id): "InvalidParameter: bad attribute"})
    before = timezone.now()

    stats = Relay(publisher=publisher).run_once()

    event.refresh_from_db()
    assert stats.retrying == 1
    assert event.status == "pending"
    assert event.attempts == 1
    assert event.last_error == "InvalidParameter: bad attribute"
    assert event.next_attempt_at > before
    assert event.claimed_until is None
    assert RelayAttempt.objects.get(event=event).error == "InvalidParameter: bad attribute"


@pytest.mark.django_db
def test_event_fails_after_max_attempts(settings):
    settings.OUTBOX = {**settings.OUTBOX, "MAX_ATTEMPTS": 2}
    event = record_event("a.b", subject=1)
    publisher = ScriptedPublisher({str(event.id): "InvalidParameter"})
    relay = Relay(publisher=publisher)
    failed = []
    receiver = lambda sender, event_id, error, **kw: failed.append(event_id)  # noqa: E731
    signals.event_failed.connect(receiver)
    try:
        relay.run_once()
        OutboxEvent.objects.filter(id=event.id).update(next_attempt_at=timezone.now())
        relay.run_once()
    finally:
        signals.event_failed.disconnect(receiver)

    event.refresh_from_db()
    assert event.status == "failed"
    assert event.attempts == 2
    assert failed == [event.id]
    assert RelayAttempt.objects.filter(event=event).count() == 2


@pytest.mark.django_db
def test_outage_releases_without_charging_attempts():
    event = record_event("a.b", subject=1)
    publisher = ScriptedPublisher({str(event.id): "outage"})

    stats = Relay(publisher=publisher).run_once()

    event.refresh_from_db()
    assert stats.outage == 1
    assert event.attempts == 0
    assert event.status == "pending"
    assert event.claimed_until is None
    assert event.last_error == "unreachable"


@pytest.mark.django_db
def test_relay_skips_events_under_live_lease():
    event = record_event("a.b", subject=1)
    OutboxEvent.objects.filter(id=event.id).update(
        claimed_until=timezone.now() + timedelta(minutes=1)
    )
    publisher = ScriptedPublisher()

    assert Relay(publisher=publisher).run_once().claimed == 0
    OutboxEvent.objects.filter(id=event.id).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert Relay(publisher=publisher).run_once().published == 1


@pytest.mark.django_db
def test_once_stops_when_nothing_claimable():
    for i in range(5):
        record_event("a.b", subject=i)
    publisher = ScriptedPublisher()

    Relay(batch_size=2, publisher=publisher).run(threading.Event(), interval=60, once=True)

    assert len(publisher.published) == 5


def test_retry_delay_grows_exponentially_with_jitter(settings):
    settings.OUTBOX = {**settings.OUTBOX, "BACKOFF_BASE": 2, "BACKOFF_MAX": 100}
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (10, 100)]:
        delay = retry_delay(attempts)
        assert ceiling / 2 <= delay <= ceiling


def test_pack_batches_respects_count_and_bytes():
    small = [OutgoingMessage(str(i), "x" * 10, {}) for i in range(23)]
    assert [len(b) for b in pack_batches(small, 262_144)] == [10, 10, 3]

    large = [OutgoingMessage(str(i), "x" * 100_000, {}) for i in range(5)]
    assert [len(b) for b in pack_batches(large, 262_144)] == [2, 2, 1]


@pytest.mark.django_db
def test_relay_command_rejects_bad_publisher_setting(settings):
    settings.OUTBOX = {**settings.OUTBOX, "PUBLISHER": "outbox.nowhere.Publisher"}
    with pytest.raises(Exception, match="cannot be imported"):
        call_command("relay_outbox", "--once")


@pytest.mark.parametrize(
    "option, value",
    [("--batch-size", "0"), ("--interval", "-1"), ("--interval", "inf"), ("--interval", "nan")],
)
def test_relay_command_rejects_bad_options(option, value):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match=f"argument {option}: .* got '{value}'"):
        call_command("relay_outbox", option, value)
