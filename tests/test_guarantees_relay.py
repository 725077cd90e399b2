"""Relay guarantees on PostgreSQL: concurrent relays, crashes, leases, outages.

Publications are counted by draining the heap queue, which every
``user.logged_in`` event reaches, so each count is what SNS fanned out.
"""

import json
import re
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import fanout as fanout_module
from outbox import aws
from outbox.api import record_event
from outbox.models import OutboxEvent, RelayAttempt
from outbox.publishers import Publisher, PublishResult, SNSPublisher
from outbox.relay import Relay
from tests import processes

LOGGED_IN = "user.logged_in"


def drain_event_ids(queue_url) -> list[str]:
    """Receive and delete everything in a queue; return the CloudEvent ids."""
    sqs = aws.client("sqs")
    ids = []
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        if not messages:
            return ids
        for message in messages:
            ids.append(json.loads(message["Body"])["id"])
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)
            ],
        )


def heap_queue(fanout):
    return next(q.queue_url for q in fanout.queues if q.integration == "heap")


def record_logins(count: int) -> set[str]:
    return {
        str(record_event(LOGGED_IN, {"user_id": n}, subject=n).id) for n in range(count)
    }


def relay_environment(**outbox_overrides) -> dict[str, str]:
    return processes.process_environment(
        {
            "DJANGO_SETTINGS_MODULE": "bench.guarantees_settings",
            "OUTBOX_OVERRIDES": json.dumps(outbox_overrides),
        }
    )


def run_relays(count: int, tmp_path, env) -> list[int]:
    """Start ``count`` relay processes with --once at the same time; wait for all."""
    started = [
        processes.start_manage(
            [
                "relay_outbox",
                "--once",
                "--batch-size",
                "10",
                "--relay-id",
                f"relay-{n}",
            ],
            env,
            tmp_path / f"relay-{n}.log",
        )
        for n in range(count)
    ]
    try:
        return [process.wait(timeout=240) for process in started]
    finally:
        for process in started:
            processes.kill(process)


@pytest.mark.slow
@pytest.mark.parametrize("relay_count", [2, 4])
def test_concurrent_relays_publish_each_once(
    postgres, transactional_db, fanout, tmp_path, relay_count
):
    expected = record_logins(120)

    exit_codes = run_relays(relay_count, tmp_path, relay_environment())

    assert exit_codes == [0] * relay_count
    published_ids = drain_event_ids(heap_queue(fanout))
    assert sorted(published_ids) == sorted(expected)
    assert OutboxEvent.objects.exclude(status="published").count() == 0
    relays_that_published = set(
        OutboxEvent.objects.values_list("claimed_by", flat=True)
    )
    assert len(relays_that_published) > 1


class BlackHole:
    """A loopback TCP server that accepts connections and never responds."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_killed_relay_rows_published_after_lease(
    postgres, transactional_db, fanout, tmp_path
):
    expected = record_logins(30)
    black_hole = BlackHole()
    # This relay claims a batch, then hangs in PublishBatch on a server that
    # never responds, holding a two-second lease when it is killed.
    stuck_env = relay_environment(
        LEASE_SECONDS=2, AWS_ENDPOINT_URL=black_hole.url, TOPIC_ARN=fanout.topic_arn
    )
    stuck = processes.start_manage(
        ["relay_outbox", "--batch-size", "10", "--relay-id", "doomed"],
        stuck_env,
        tmp_path / "doomed.log",
    )
    try:
        claimed = wait_for(
            lambda: OutboxEvent.objects.filter(claimed_by="doomed").exists()
        )
        assert claimed, (tmp_path / "doomed.log").read_text()
        processes.kill(stuck)
    finally:
        processes.kill(stuck)
        black_hole.close()
    doomed_ids = {
        str(i)
        for i in OutboxEvent.objects.filter(claimed_by="doomed").values_list(
            "id", flat=True
        )
    }

    # --once stops when nothing is claimable, so it starts after the lease.
    assert wait_for(
        lambda: not OutboxEvent.objects.filter(
            claimed_until__gt=timezone.now()
        ).exists()
    )
    exit_codes = run_relays(1, tmp_path, relay_environment())

    assert exit_codes == [0]
    published_ids = drain_event_ids(heap_queue(fanout))
    assert sorted(published_ids) == sorted(expected)
    assert doomed_ids <= set(published_ids)
    assert OutboxEvent.objects.filter(claimed_by="doomed").count() == 0
    assert OutboxEvent.objects.exclude(status="published").count() == 0


class CallbackPublisher(Publisher):
    """Run ``before`` inside publish(), then return fixed results."""

    def __init__(self, before=None, outcome="ok"):
        self.before = before
        self.outcome = outcome

    def publish(self, messages):
        if self.before:
            self.before()
        if self.outcome == "ok":
            return [
                PublishResult(m.event_id, message_id=f"slow-{m.event_id}")
                for m in messages
            ]
        outage = self.outcome == "outage"
        return [
            PublishResult(m.event_id, error="slow relay error", outage=outage)
            for m in messages
        ]


class RecordingPublisher(Publisher):
    def __init__(self):
        self.published = []

    def publish(self, messages):
        self.published.extend(messages)
        return [
            PublishResult(m.event_id, message_id=f"fast-{m.event_id}") for m in messages
        ]


def expire_leases():
    OutboxEvent.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize("slow_outcome", ["ok", "rejected", "outage"])
def test_slow_relay_cannot_overwrite_takeover(postgres, transactional_db, slow_outcome):
    event = record_event(LOGGED_IN, {"user_id": 1}, subject=1)
    fast = Relay(relay_id="fast", publisher=RecordingPublisher())

    def lease_expires_and_fast_relay_takes_over():
        expire_leases()
        fast.run_once()

    slow = Relay(
        relay_id="slow",
        publisher=CallbackPublisher(
            lease_expires_and_fast_relay_takes_over, slow_outcome
        ),
    )
    stats = slow.run_once()

    event.refresh_from_db()
    assert event.status == "published"
    assert event.sns_message_id == f"fast-{event.id}"
    assert event.claimed_by == "fast"
    assert event.attempts == 0
    assert event.last_error == ""
    assert stats.published == 0
    assert stats.retrying == 0
    assert RelayAttempt.objects.count() == 0


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_unreachable_sns_charges_no_attempt(
    postgres, transactional_db, fanout, settings
):
    events = [record_event(LOGGED_IN, {"user_id": n}, subject=n) for n in range(12)]
    publisher = SNSPublisher()  # topic ARN resolved while moto is reachable
    settings.OUTBOX = {**settings.OUTBOX, "AWS_ENDPOINT_URL": closed_port_url()}
    aws.reset_clients()
    relay = Relay(publisher=publisher, relay_id="cut-off")
    try:
        stats = relay.run_once()
        relay.run(threading.Event(), interval=0, once=True)
    finally:
        relay.close()

    assert stats.outage == len(events)
    assert OutboxEvent.objects.filter(status="pending", attempts=0).count() == len(
        events
    )
    assert OutboxEvent.objects.filter(claimed_until__isnull=False).count() == 0
    assert RelayAttempt.objects.count() == 0
    assert "unreachable" in OutboxEvent.objects.first().last_error


class OneInvalidEntryPublisher(SNSPublisher):
    """Make one event's message longer than SNS allows, bypassing the claim check.

    moto 5.2 fails that entry alone, LocalStack the whole ``PublishBatch`` call
    that contains it. Either way only this event may be charged.
    """

    def __init__(self, invalid_event_id):
        super().__init__()
        self.invalid_event_id = invalid_event_id

    def _entry(self, index, message):
        entry = super()._entry(index, message)
        if message.event_id == self.invalid_event_id:
            entry["Message"] = "x" * 300_000
        return entry


def test_invalid_entry_charges_only_itself(
    postgres, transactional_db, fanout, settings
):
    settings.OUTBOX = {**settings.OUTBOX, "MAX_ATTEMPTS": 2}
    events = [record_event(LOGGED_IN, {"user_id": n}, subject=n) for n in range(5)]
    invalid = events[2]
    relay = Relay(publisher=OneInvalidEntryPublisher(str(invalid.id)), relay_id="r")
    try:
        first = relay.run_once()
        OutboxEvent.objects.update(next_attempt_at=timezone.now())
        second = relay.run_once()
    finally:
        relay.close()

    invalid.refresh_from_db()
    assert first.published == 4
    assert first.retrying == 1
    assert second.failed == 1
    assert invalid.status == "failed"
    assert invalid.attempts == 2
    # moto: "Message too long", LocalStack: "BatchRequestTooLong".
    assert re.search("too ?long", invalid.last_error, re.IGNORECASE)
    assert OutboxEvent.objects.filter(status="published", attempts=0).count() == 4
    assert RelayAttempt.objects.filter(event=invalid).count() == 2
    assert sorted(drain_event_ids(heap_queue(fanout))) == sorted(
        str(e.id) for e in events if e != invalid
    )


class OrderRecordingPublisher(Publisher):
    """Reject the listed event ids once each; record the order of the rest."""

    def __init__(self, reject_once):
        self.reject_once = set(reject_once)
        self.order = []

    def publish(self, messages):
        results = []
        for message in messages:
            if message.event_id in self.reject_once:
                self.reject_once.discard(message.event_id)
                results.append(PublishResult(message.event_id, error="rejected once"))
                continue
            self.order.append(message.event_id)
            results.append(PublishResult(message.event_id, message_id="m"))
        return results


def test_fifo_topic_keeps_subject_order(postgres, transactional_db, settings):
    settings.OUTBOX = {
        **settings.OUTBOX,
        "TOPIC_NAME": "events.fifo",
        "TOPIC_ARN": None,
    }
    a1 = record_event(LOGGED_IN, {"n": 1}, subject="a")
    b1 = record_event(LOGGED_IN, {"n": 2}, subject="b")
    a2 = record_event(LOGGED_IN, {"n": 3}, subject="a")
    a3 = record_event(LOGGED_IN, {"n": 4}, subject="a")
    publisher = OrderRecordingPublisher(reject_once=[str(a1.id)])
    relay = Relay(publisher=publisher, relay_id="fifo")

    for _ in range(6):
        relay.run_once()
        # Make the retry of the rejected event due at once.
        OutboxEvent.objects.filter(status="pending").update(
            next_attempt_at=timezone.now()
        )

    a_order = [i for i in publisher.order if i in {str(a1.id), str(a2.id), str(a3.id)}]
    assert a_order == [str(a1.id), str(a2.id), str(a3.id)]
    assert publisher.order[0] == str(b1.id)
    assert OutboxEvent.objects.exclude(status="published").count() == 0


def test_fifo_topic_groups_by_subject(postgres, transactional_db, aws_settings):
    aws_settings.OUTBOX = {
        **aws_settings.OUTBOX,
        "TOPIC_NAME": aws_settings.OUTBOX["TOPIC_NAME"] + ".fifo",
    }
    plan = fanout_module.apply(fanout_module.build_plan())
    events = [
        record_event(LOGGED_IN, {"n": n}, subject=f"user-{n % 2}") for n in range(4)
    ]
    relay = Relay(relay_id="fifo")
    try:
        relay.run(threading.Event(), interval=0, once=True)
    finally:
        relay.close()

    # LocalStack fans out after the publish returns and may hand out one
    # message of a FIFO group per receive, so receive and delete until all
    # four arrived or the deadline passed.
    sqs = aws.client("sqs")
    received = {}
    deadline = time.monotonic() + 15
    while len(received) < len(events) and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=heap_queue(plan),
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId"],
        )
        for message in response.get("Messages", []):
            received[json.loads(message["Body"])["id"]] = message["Attributes"]
            sqs.delete_message(
                QueueUrl=heap_queue(plan), ReceiptHandle=message["ReceiptHandle"]
            )
    assert len(received) == len(events)
    for event in events:
        attributes = received[str(event.id)]
        assert attributes["MessageGroupId"] == event.subject
        assert attributes["MessageDeduplicationId"] == str(event.id)
