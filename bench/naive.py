"""Baselines: the straightforward relay and consumer that the real ones must beat.

They do the same work one item at a time, with the ORM, the way a first
version of an outbox usually does, so each benchmark can show its figure
beside one measured in the same run on the same machine.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from integrations.base import DeliveryResult, Handler
from outbox import aws, conf
from outbox.messages import build_message
from outbox.models import OutboxEvent


def relay_one(publisher) -> bool:
    """Read one pending row, publish it, save it; return False when none is left."""
    with transaction.atomic():
        event = (
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(status=OutboxEvent.Status.PENDING)
            .order_by("created_at")
            .first()
        )
        if event is None:
            return False
        message = build_message(
            event, int(conf.get("MAX_MESSAGE_BYTES")), conf.get("CLAIM_CHECK_PREFIX")
        )
        result = publisher.publish([message])[0]
        event.status = OutboxEvent.Status.PUBLISHED
        event.published_at = timezone.now()
        event.sns_message_id = result.message_id
        event.save(update_fields=["status", "published_at", "sns_message_id"])
    return True


def relay_all(publisher) -> int:
    relayed = 0
    while relay_one(publisher):
        relayed += 1
    return relayed


class NullHandler(Handler):
    """A handler that makes no call, so the benchmark measures the consumer alone."""

    event_types = ("bench.consumed",)

    def deliver(self, event):
        return DeliveryResult(status=None)


def consume_one_at_a_time(consumer) -> int:
    """Receive one message, handle it, delete it, until the queue is empty.

    Handling is the real consumer's ``process``, so the difference from
    ``Consumer.poll`` is batching and concurrency alone.
    """
    sqs = aws.client("sqs")
    consumed = 0
    while True:
        response = sqs.receive_message(
            QueueUrl=consumer.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return consumed
        outcome = consumer.process(messages[0])
        if outcome.delete:
            sqs.delete_message(
                QueueUrl=consumer.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"]
            )
        consumed += 1
