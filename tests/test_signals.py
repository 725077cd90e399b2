"""Each public signal fires with the documented arguments."""

from __future__ import annotations

import threading

import pytest

from integrations import signals as integration_signals
from integrations.models import Delivery
from outbox import signals as outbox_signals
from outbox.api import record_event
from outbox.models import OutboxEvent
from outbox.publishers import Publisher, PublishResult
from outbox.relay import Relay


class Receiver:
    """Connects to a signal and keeps the keyword arguments of each call."""

    def __init__(self, signal):
        self.signal = signal
        self.calls: list[dict] = []
        signal.connect(self, weak=False)

    def __call__(self, sender, signal, **kwargs):
        self.calls.append({"sender": sender, **kwargs})

    def disconnect(self):
        self.signal.disconnect(self)


@pytest.fixture
def receive():
    receivers = []

    def connect(signal) -> Receiver:
        receiver = Receiver(signal)
        receivers.append(receiver)
        return receiver

    yield connect
    for receiver in receivers:
        receiver.disconnect()


class RejectingPublisher(Publisher):
    """Rejects every message, as SNS does for an invalid one."""

    def publish(self, messages):
        return [PublishResult(m.event_id, error="InvalidParameter: rejected") for m in messages]


def relay_once(publisher=None):
    relay = Relay(publisher=publisher)
    try:
        relay.run(threading.Event(), interval=0, once=True)
    finally:
        relay.close()


@pytest.mark.django_db
def test_event_recorded_sends_event(receive):
    receiver = receive(outbox_signals.event_recorded)

    event = record_event("order.placed", {"sku": "TEA-250"}, subject="7")

    assert len(receiver.calls) == 1
    assert receiver.calls[0]["sender"] is OutboxEvent
    assert receiver.calls[0]["event"] == event


@pytest.mark.django_db(transaction=True)
def test_events_published_sends_ids(receive, fanout):
    receiver = receive(outbox_signals.events_published)
    event = record_event("user.signed_up", {"email": "ada@example.com"}, subject="1")

    relay_once()

    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    assert call["sender"] is OutboxEvent
    assert call["event_ids"] == [event.id]
    assert isinstance(call["relay"], str)
    assert call["relay"]


@pytest.mark.django_db(transaction=True)
def test_event_failed_sends_error(receive, settings):
    settings.OUTBOX = {**settings.OUTBOX, "MAX_ATTEMPTS": 1}
    receiver = receive(outbox_signals.event_failed)
    event = record_event("user.signed_up", {"email": "ada@example.com"}, subject="1")

    relay_once(publisher=RejectingPublisher())

    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    assert call["sender"] is OutboxEvent
    assert call["event_id"] == event.id
    assert "InvalidParameter" in call["error"]


@pytest.mark.django_db(transaction=True)
def test_delivery_succeeded_sends_delivery(receive, fanout, third_parties, consume_until):
    receiver = receive(integration_signals.delivery_succeeded)
    event = record_event("user.signed_up", {"email": "ada@example.com"}, subject="1")
    relay_once()

    consume_until(lambda: Delivery.objects.filter(integration="heap").exists())

    heap_calls = [c for c in receiver.calls if c["delivery"].integration == "heap"]
    assert len(heap_calls) == 1
    call = heap_calls[0]
    assert call["sender"] is Delivery
    assert call["delivery"].event_id == event.id
    assert call["delivery"].status == Delivery.Status.DELIVERED
    delivery = Delivery.objects.get(pk=call["delivery"].pk)
    assert delivery.status == Delivery.Status.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_delivery_failed_sends_reason(receive, fanout, third_parties, consume_until):
    third_parties.server.clear_all_handlers()
    third_parties.server.expect_request("/api/track", method="POST").respond_with_json(
        {"error": "invalid app_id"}, status=400
    )
    receiver = receive(integration_signals.delivery_failed)
    event = record_event("user.signed_up", {"email": "ada@example.com"}, subject="1")
    relay_once()

    consume_until(
        lambda: Delivery.objects.filter(integration="heap", status="dead_lettered").exists()
    )

    heap_calls = [c for c in receiver.calls if c["delivery"].integration == "heap"]
    assert len(heap_calls) == 1
    call = heap_calls[0]
    assert call["sender"] is Delivery
    assert call["delivery"].event_id == event.id
    delivery = Delivery.objects.get(pk=call["delivery"].pk)
    assert delivery.status == Delivery.Status.DEAD_LETTERED
    assert "HTTP 400" in call["reason"]
