"""Consumer guarantees: bad messages, classified failures, copies, outages.

Messages go straight into the heap queue on the moto server, so each test
controls the exact bytes a consumer receives. The heap stand-in is a local
HTTP server whose responses each test scripts.
"""

import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone
from werkzeug import Response

from integrations import consumer as consumer_module
from integrations import fanout as fanout_module
from integrations import inbox
from integrations.consumer import DEAD_LETTER_REASON_ATTRIBUTE, Consumer
from integrations.models import Delivery
from outbox import aws, conf
from outbox.api import record_event
from outbox.messages import build_message

LOGGED_IN = "user.logged_in"


@pytest.fixture
def heap(aws_settings, third_parties):
    """Return a function that applies queue settings, creates the fan-out and
    returns a heap consumer."""
    consumers = []

    def make(integration="heap", **queue_settings):
        aws_settings.INTEGRATIONS = {**aws_settings.INTEGRATIONS, **queue_settings}
        fanout_module.apply(fanout_module.build_plan())
        created = Consumer(integration)
        consumers.append(created)
        return created

    yield make
    for created in consumers:
        created.close()


def cloudevent_message(user_id=1, event_type=LOGGED_IN):
    """Record an event and return (event id, SQS body, SQS attributes)."""
    data = {"user_id": user_id, "email": f"user{user_id}@example.com", "name": "Ada"}
    event = record_event(event_type, data, subject=user_id)
    message = build_message(
        event,
        conf.get_positive_number("MAX_MESSAGE_BYTES"),
        conf.get("CLAIM_CHECK_PREFIX"),
    )
    return str(event.id), message.body, message.attributes


def send(consumer, body, attributes=None):
    aws.client("sqs").send_message(
        QueueUrl=consumer.queue_url,
        MessageBody=body,
        MessageAttributes=attributes or {},
    )


def send_event(consumer, user_id=1) -> str:
    event_id, body, attributes = cloudevent_message(user_id)
    send(consumer, body, attributes)
    return event_id


def consume_until_empty(consumer, rounds=50):
    for _ in range(rounds):
        if consumer.poll(wait_seconds=1) == 0:
            return


def consume_until_drained(consumer, timeout=60.0):
    """Poll until no message is left, visible or in flight."""
    deadline = time.monotonic() + timeout
    while queue_depth(consumer) and time.monotonic() < deadline:
        consumer.poll(wait_seconds=1)


def dead_letters(consumer) -> list[tuple[str, str]]:
    """Receive and delete the dead-letter queue; return (body, reason) pairs."""
    sqs = aws.client("sqs")
    found = []
    while True:
        response = sqs.receive_message(
            QueueUrl=consumer.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            reason = message.get("MessageAttributes", {}).get(
                DEAD_LETTER_REASON_ATTRIBUTE
            )
            found.append((message["Body"], reason["StringValue"] if reason else ""))
            sqs.delete_message(
                QueueUrl=consumer.dlq_url, ReceiptHandle=message["ReceiptHandle"]
            )


def queue_depth(consumer) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=consumer.queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def heap_keys(third_parties) -> list[str]:
    return [json.loads(r.get_data())["idempotency_key"] for r in third_parties.heap]


def cloudevent(**changes):
    document = {
        "specversion": "1.0",
        "id": "0d9fb3b5-8b9a-4a43-9b53-0b7a4d8f0a11",
        "source": "/tests",
        "type": LOGGED_IN,
        "data": {"user_id": 5},
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


BAD_MESSAGES = {
    "not JSON": ("{not json", "body is not JSON"),
    "JSON array": ("[1, 2, 3]", "expected an object"),
    "plain JSON object": ('{"hello": "world"}', "missing required attribute"),
    "SNS envelope with bad Message": (
        json.dumps({"Type": "Notification", "Message": "not json"}),
        "SNS envelope's Message is not JSON",
    ),
    "unknown type": (json.dumps(cloudevent(type="user.deleted")), "'user.deleted'"),
    "unknown specversion": (
        json.dumps(cloudevent(specversion="0.3")),
        "unsupported CloudEvents specversion",
    ),
    "missing source": (
        json.dumps(cloudevent(source=None)),
        "missing required attribute",
    ),
    "id not a UUID": (json.dumps(cloudevent(id="event-1")), "is not a UUID"),
    "dataref missing": (
        json.dumps(cloudevent(data=None, dataref="outbox-payloads/absent.json")),
        "not found",
    ),
    "dataref outside prefix": (
        json.dumps(cloudevent(data=None, dataref="../settings.py")),
        "not a key under the claim-check prefix",
    ),
    "dataref climbing out of prefix": (
        json.dumps(cloudevent(data=None, dataref="outbox-payloads/../../etc/passwd")),
        "not a key under the claim-check prefix",
    ),
}


def test_bad_messages_dead_lettered_with_reasons(
    postgres, transactional_db, heap, third_parties
):
    consumer = heap()
    good_ids = []
    for body, _ in BAD_MESSAGES.values():
        send(consumer, body)
        good_ids.append(send_event(consumer, user_id=len(good_ids)))

    consume_until_drained(consumer)

    reasons = dict(dead_letters(consumer))
    for kind, (body, expected_reason) in BAD_MESSAGES.items():
        assert expected_reason in reasons.get(body, "(not dead-lettered)"), kind
    assert len(reasons) == len(BAD_MESSAGES)
    assert sorted(heap_keys(third_parties)) == sorted(good_ids)


def respond_heap(third_parties, handler):
    third_parties.server.clear_all_handlers()
    third_parties.server.expect_request(
        "/api/track", method="POST"
    ).respond_with_handler(handler)


TRANSIENT_RESPONSES = {
    "503": lambda request: Response("down", status=503),
    "500": lambda request: Response("bug", status=500),
    "429 with Retry-After": lambda request: Response(
        "slow down", status=429, headers={"Retry-After": "2"}
    ),
    "408": lambda request: Response("request timeout", status=408),
}


class SilentServer:
    """A loopback TCP server that accepts connections and never responds."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self):
        self.listener.close()
        for connection in self.accepted:
            connection.close()


def spy_visibility_changes(consumer) -> list[int]:
    delays = []
    change = consumer._change_visibility

    def recording_change(message, seconds):
        delays.append(seconds)
        change(message, seconds)

    consumer._change_visibility = recording_change
    return delays


def retry_until_dead_lettered(consumer, event_id):
    for _ in range(30):
        consumer.poll(wait_seconds=1)
        if Delivery.objects.filter(event_id=event_id, status="dead_lettered").exists():
            return


@pytest.mark.parametrize("kind", list(TRANSIENT_RESPONSES))
def test_transient_failure_retried_then_dead_lettered(
    postgres, transactional_db, heap, third_parties, kind
):
    respond_heap(third_parties, TRANSIENT_RESPONSES[kind])
    consumer = heap(MAX_RECEIVE_COUNT=3, RETRY_BACKOFF_BASE=1, RETRY_BACKOFF_MAX=1)
    delays = spy_visibility_changes(consumer)
    event_id = send_event(consumer)

    retry_until_dead_lettered(consumer, event_id)

    delivery = Delivery.objects.get(event_id=event_id)
    letters = dead_letters(consumer)
    assert len(third_parties.heap) == 3
    assert len(delays) == 2
    assert delivery.status == "dead_lettered"
    assert delivery.attempts == 3
    assert len(letters) == 1
    assert "gave up after 3 receives" in letters[0][1]
    assert queue_depth(consumer) == 0
    if kind == "429 with Retry-After":
        assert delays == [2, 2]


def test_timeout_retried_then_dead_lettered(postgres, transactional_db, heap, settings):
    silent = SilentServer()
    settings.INTEGRATIONS["HANDLERS"]["heap"]["OPTIONS"].update(
        BASE_URL=silent.url, TIMEOUT=0.5
    )
    try:
        consumer = heap(MAX_RECEIVE_COUNT=3, RETRY_BACKOFF_BASE=1, RETRY_BACKOFF_MAX=1)
        event_id = send_event(consumer)
        retry_until_dead_lettered(consumer, event_id)
    finally:
        silent.close()

    letters = dead_letters(consumer)
    assert len(silent.accepted) == 3
    assert Delivery.objects.get(event_id=event_id).status == "dead_lettered"
    assert len(letters) == 1
    assert "timed out" in letters[0][1]
    assert queue_depth(consumer) == 0


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_permanent_failure_dead_lettered_at_once(
    postgres, transactional_db, heap, third_parties, status
):
    respond_heap(third_parties, lambda request: Response("no", status=status))
    consumer = heap(MAX_RECEIVE_COUNT=3)
    event_id = send_event(consumer)

    consume_until_empty(consumer)

    delivery = Delivery.objects.get(event_id=event_id)
    letters = dead_letters(consumer)
    assert len(third_parties.heap) == 1
    assert delivery.status == "dead_lettered"
    assert delivery.response_status == status
    assert len(letters) == 1
    assert f"HTTP {status}" in letters[0][1]
    assert queue_depth(consumer) == 0


class Gate:
    """A heap stand-in that holds each request until released."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, request):
        self.entered.set()
        self.release.wait(30)
        return Response("{}", status=200, content_type="application/json")


def test_copies_in_one_batch_call_once(postgres, transactional_db, heap, third_parties):
    consumer = heap()
    event_id, body, attributes = cloudevent_message()
    send(consumer, body, attributes)
    send(consumer, body, attributes)

    consume_until_empty(consumer)

    assert heap_keys(third_parties) == [event_id]


def test_two_consumers_with_copies_call_once(
    postgres, transactional_db, heap, third_parties, monkeypatch, settings
):
    monkeypatch.setattr(consumer_module, "BUSY_RETRY_SECONDS", 1)
    gate = Gate()
    respond_heap(third_parties, gate)
    settings.INTEGRATIONS["HANDLERS"]["heap"]["OPTIONS"]["TIMEOUT"] = 30
    first = heap()
    second = heap()
    event_id, body, attributes = cloudevent_message()
    send(first, body, attributes)
    worker = threading.Thread(target=first.poll, args=(1,))
    worker.start()
    assert gate.entered.wait(20)

    send(second, body, attributes)
    received_while_busy = second.poll(wait_seconds=1)
    gate.release.set()
    worker.join(30)
    consume_until_drained(second)

    assert received_while_busy == 1
    assert heap_keys(third_parties) == [event_id]
    assert Delivery.objects.get(event_id=event_id).status == "delivered"
    assert queue_depth(first) == 0


def test_slow_handler_keeps_message_invisible(
    postgres, transactional_db, heap, third_parties, settings
):
    gate = Gate()
    respond_heap(third_parties, gate)
    settings.INTEGRATIONS["HANDLERS"]["heap"]["OPTIONS"]["TIMEOUT"] = 30
    first = heap(VISIBILITY_TIMEOUT=2)
    second = Consumer("heap")
    try:
        event_id = send_event(first)
        worker = threading.Thread(target=first.poll, args=(1,))
        worker.start()
        assert gate.entered.wait(20)
        # The call lasts three visibility timeouts; the heartbeat must keep
        # the message from the other consumer all that time.
        received = sum(second.poll(wait_seconds=1) for _ in range(5))
        gate.release.set()
        worker.join(30)
    finally:
        gate.release.set()
        second.close()

    assert received == 0
    assert heap_keys(third_parties) == [event_id]
    assert queue_depth(first) == 0


def test_database_outage_deletes_nothing(
    postgres, transactional_db, heap, third_parties, monkeypatch
):
    consumer = heap(VISIBILITY_TIMEOUT=1)
    event_id = send_event(consumer)

    def database_down(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed")

    with monkeypatch.context() as patch:
        patch.setattr(inbox, "begin", database_down)
        handled = consumer.poll(wait_seconds=1)
    assert handled == 1
    assert queue_depth(consumer) == 1
    assert third_parties.heap == []

    time.sleep(1.5)  # the visibility timeout of the kept message
    consume_until_empty(consumer)

    assert heap_keys(third_parties) == [event_id]
    assert dead_letters(consumer) == []
    assert Delivery.objects.get(event_id=event_id).status == "delivered"


def test_outage_after_call_repeats_same_key(
    postgres, transactional_db, heap, third_parties, monkeypatch
):
    # The third party responded, then recording the delivery failed: the
    # message comes back and the call is repeated with the same idempotency
    # key, which Heap records once.
    consumer = heap(VISIBILITY_TIMEOUT=1)
    event_id = send_event(consumer)
    finish = inbox.finish

    def finish_fails_once(delivery, owner, status, **kwargs):
        monkeypatch.setattr(inbox, "finish", finish)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(inbox, "finish", finish_fails_once)
    consumer.poll(wait_seconds=1)
    assert queue_depth(consumer) == 1

    time.sleep(1.5)
    consume_until_empty(consumer)

    assert heap_keys(third_parties) == [event_id, event_id]
    assert Delivery.objects.get(event_id=event_id).status == "delivered"
    assert dead_letters(consumer) == []


def crashed_attempt(event_id, integration):
    """Leave the delivery row as a consumer killed in the middle of a call does."""
    Delivery.objects.create(
        event_id=event_id,
        integration=integration,
        event_type="user.signed_up",
        status="in_progress",
        attempts=1,
        lease_owner="killed-consumer",
        lease_until=timezone.now() - timedelta(seconds=1),
    )


def test_unknown_outcome_not_repeated_without_key(
    postgres, transactional_db, heap, third_parties
):
    consumer = heap("slack")
    event_id, body, attributes = cloudevent_message(event_type="user.signed_up")
    crashed_attempt(event_id, "slack")
    send(consumer, body, attributes)

    consume_until_empty(consumer)

    letters = dead_letters(consumer)
    assert third_parties.slack == []
    assert Delivery.objects.get(event_id=event_id).status == "dead_lettered"
    assert len(letters) == 1
    assert "without a recorded outcome" in letters[0][1]


def test_unknown_outcome_repeated_with_key(
    postgres, transactional_db, heap, third_parties
):
    consumer = heap("heap")
    event_id, body, attributes = cloudevent_message(event_type="user.signed_up")
    crashed_attempt(event_id, "heap")
    send(consumer, body, attributes)

    consume_until_empty(consumer)

    assert heap_keys(third_parties) == [event_id]
    assert Delivery.objects.get(event_id=event_id).status == "delivered"
