"""Operator repairs on an integration's queues: redrive and replay.

Redrive moves dead-letter messages back to the integration's queue by
receiving them, sending each to the queue without the consumer's
``dead_letter_reason`` attribute, and deleting it from the dead-letter queue
once the send succeeded. SQS's own ``StartMessageMoveTask`` would do the
same on AWS, but moto 5.2 does not implement it and it cannot select single
messages. A message is sent before it is deleted, so a crash in between
leaves a copy in both queues, and the consumer's inbox skips the duplicate.

Replay sends an event's CloudEvent straight to one integration's queue, past
the topic, so the other integrations are not called again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone

from botocore.exceptions import BotoCoreError, ClientError

from integrations import fanout, registry
from integrations.consumer import DEAD_LETTER_REASON_ATTRIBUTE
from integrations.models import Delivery
from outbox import aws, claimcheck
from outbox import conf as outbox_conf
from outbox.exceptions import InvalidMessageError
from outbox.messages import build_message, unwrap_body
from outbox.models import OutboxEvent

logger = logging.getLogger(__name__)

BATCH = 10  # SQS maximum per receive, send and delete call
HIDE_SECONDS = 120  # visibility of received dead letters while a redrive runs
REDRIVE_LIMIT = 10_000  # messages moved per run, to bound one admin request
PEEK_LIMIT = 100


@dataclass
class DeadLetter:
    """A dead-letter queue message, read without removing it."""

    message_id: str
    event_id: str
    event_type: str
    reason: str
    sent_at: datetime | None
    body: str = ""
    attributes: dict = field(default_factory=dict)
    receipt_handle: str = ""
    group_id: str = ""


@dataclass
class RedriveResult:
    moved: int = 0
    moved_event_ids: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "message id: error"
    limit_reached: bool = False


@dataclass
class ReplayResult:
    sent: list[str] = field(default_factory=list)
    not_subscribed: list[str] = field(default_factory=list)
    already_delivered: list[str] = field(default_factory=list)
    not_published: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "event id: error"


def parse(message: dict) -> DeadLetter:
    attributes = message.get("MessageAttributes") or {}
    try:
        document, _ = unwrap_body(message.get("Body", ""), attributes)
    except InvalidMessageError:
        document = {}
    system = message.get("Attributes") or {}
    sent = system.get("SentTimestamp")
    return DeadLetter(
        message_id=message["MessageId"],
        event_id=str(document.get("id", "")),
        event_type=str(document.get("type", "")),
        reason=attributes.get(DEAD_LETTER_REASON_ATTRIBUTE, {}).get("StringValue", ""),
        sent_at=datetime.fromtimestamp(int(sent) / 1000, dt_timezone.utc) if sent else None,
        body=message.get("Body", ""),
        attributes=attributes,
        receipt_handle=message["ReceiptHandle"],
        group_id=system.get("MessageGroupId", ""),
    )


def _receive(sqs, dlq_url: str, visibility: int) -> list[DeadLetter]:
    response = sqs.receive_message(
        QueueUrl=dlq_url,
        MaxNumberOfMessages=BATCH,
        # One second of long polling, because a short poll samples only some
        # SQS servers and may return nothing while messages remain.
        WaitTimeSeconds=1,
        VisibilityTimeout=visibility,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["SentTimestamp", "MessageGroupId"],
    )
    return [parse(message) for message in response.get("Messages", [])]


def _release(sqs, dlq_url: str, letters: list[DeadLetter]) -> None:
    """Make received but untouched messages visible again at once."""
    for start in range(0, len(letters), BATCH):
        entries = [
            {"Id": str(index), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
            for index, letter in enumerate(letters[start : start + BATCH])
        ]
        try:
            sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=entries)
        except (BotoCoreError, ClientError):
            # They become visible after HIDE_SECONDS anyway.
            logger.warning("releasing dead letters failed", exc_info=True)


def peek(integration: str, limit: int = PEEK_LIMIT) -> list[DeadLetter]:
    """Return up to ``limit`` dead letters and leave them in the queue."""
    sqs = aws.client("sqs")
    dlq_url = fanout.queue_url(integration, dead_letter=True)
    seen: list[DeadLetter] = []
    try:
        while len(seen) < limit:
            batch = _receive(sqs, dlq_url, visibility=30)
            if not batch:
                break
            seen.extend(batch)
    finally:
        _release(sqs, dlq_url, seen)
    return seen[:limit]


def oldest_message_age(integration: str) -> float | None:
    """Return the age of the oldest dead letter among one receive's sample."""
    letters = peek(integration, limit=BATCH)
    times = [letter.sent_at for letter in letters if letter.sent_at]
    if not times:
        return None
    return max(0.0, time.time() - min(times).timestamp())


def redrive(
    integration: str,
    event_ids: set[str] | None = None,
    message_ids: set[str] | None = None,
    limit: int = REDRIVE_LIMIT,
) -> RedriveResult:
    """Move dead letters back to the integration's queue.

    With neither ``event_ids`` nor ``message_ids`` every message moves;
    otherwise only the messages whose CloudEvent id or SQS message id is listed.
    """
    selective = event_ids is not None or message_ids is not None
    event_ids = {str(value) for value in event_ids or ()}
    message_ids = set(message_ids or ())
    sqs = aws.client("sqs")
    dlq_url = fanout.queue_url(integration, dead_letter=True)
    queue_url = fanout.queue_url(integration)
    result = RedriveResult()
    skipped: list[DeadLetter] = []
    try:
        while result.moved < limit:
            batch = _receive(sqs, dlq_url, visibility=HIDE_SECONDS)
            if not batch:
                break
            chosen = [
                letter for letter in batch
                if not selective
                or letter.event_id in event_ids
                or letter.message_id in message_ids
            ]
            skipped.extend(letter for letter in batch if letter not in chosen)
            overflow = chosen[limit - result.moved :]
            skipped.extend(overflow)
            _move(sqs, queue_url, dlq_url, chosen[: limit - result.moved], result, skipped)
        result.limit_reached = result.moved >= limit
    finally:
        _release(sqs, dlq_url, skipped)
    logger.info(
        "redrove %s dead letters", result.moved,
        extra={"integration": integration, "moved": result.moved,
               "failed": len(result.failed)},
    )
    return result


def _move(sqs, queue_url, dlq_url, letters, result: RedriveResult, skipped) -> None:
    if not letters:
        return
    fifo = queue_url.endswith(".fifo")
    entries = [_redrive_entry(index, letter, fifo) for index, letter in enumerate(letters)]
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)

    for failure in response.get("Failed", []):
        letter = letters[int(failure["Id"])]
        result.failed.append(f"{letter.message_id}: {failure.get('Message', 'failed')}")
        skipped.append(letter)
    sent = [letters[int(success["Id"])] for success in response.get("Successful", [])]
    if sent:
        _delete_sent(sqs, dlq_url, sent)
    result.moved += len(sent)
    result.moved_event_ids.extend(letter.event_id for letter in sent if letter.event_id)


def _redrive_entry(index: int, letter: DeadLetter, fifo: bool) -> dict:
    # Only DataType and the value go back: the list fields that receive
    # returns are reserved by SQS and must not be sent.
    attributes = {
        name: {
            key: value[key] for key in ("DataType", "StringValue", "BinaryValue")
            if key in value
        }
        for name, value in letter.attributes.items()
        if name != DEAD_LETTER_REASON_ATTRIBUTE
    }
    entry = {"Id": str(index), "MessageBody": letter.body, "MessageAttributes": attributes}
    if fifo:
        entry["MessageGroupId"] = letter.group_id or letter.event_id or "redrive"
        entry["MessageDeduplicationId"] = f"redrive-{letter.message_id}"
    return entry


def _delete_sent(sqs, dlq_url: str, sent: list[DeadLetter]) -> None:
    deleted = sqs.delete_message_batch(
        QueueUrl=dlq_url,
        Entries=[
            {"Id": str(index), "ReceiptHandle": letter.receipt_handle}
            for index, letter in enumerate(sent)
        ],
    )
    for failure in deleted.get("Failed", []):
        # The message is now in both queues. The consumer's inbox delivers
        # the event once however many copies arrive.
        letter = sent[int(failure["Id"])]
        logger.warning(
            "redriven message not deleted from the dead-letter queue: %s",
            failure.get("Message"), extra={"sqs_message_id": letter.message_id},
        )


def replay(integration: str, events) -> ReplayResult:
    """Send published events' CloudEvents straight to one integration's queue.

    Events the integration does not subscribe to, events it already delivered
    and events not yet published are left out and listed in the result.
    """
    subscribed = set(registry.event_types(integration))
    events = list(events)
    delivered = {
        str(event_id)
        for event_id in Delivery.objects.filter(
            integration=integration,
            event_id__in=[event.id for event in events],
            status=Delivery.Status.DELIVERED,
        ).values_list("event_id", flat=True)
    }
    result = ReplayResult()
    to_send = []
    for event in events:
        event_id = str(event.id)
        if event.type not in subscribed:
            result.not_subscribed.append(event_id)
        elif event.status != OutboxEvent.Status.PUBLISHED:
            result.not_published.append(event_id)
        elif event_id in delivered:
            result.already_delivered.append(event_id)
        else:
            to_send.append(event)
    queue_url = fanout.queue_url(integration)
    for start in range(0, len(to_send), BATCH):
        _send_events(queue_url, integration, to_send[start : start + BATCH], result)
    logger.info(
        "replayed %s events to one integration", len(result.sent),
        extra={"integration": integration, "sent": len(result.sent),
               "failed": len(result.failed)},
    )
    return result


def _send_events(queue_url: str, integration: str, events, result: ReplayResult):
    max_bytes = int(outbox_conf.get_positive_number("MAX_MESSAGE_BYTES"))
    prefix = outbox_conf.get("CLAIM_CHECK_PREFIX")
    fifo = queue_url.endswith(".fifo")
    stamp = int(time.time())
    entries = []
    for index, event in enumerate(events):
        message = build_message(event, max_bytes, prefix)
        if message.payload is not None:
            claimcheck.store_payload(message.payload_key, message.payload)
        entry = {
            "Id": str(index),
            "MessageBody": message.body,
            "MessageAttributes": message.attributes,
        }
        if fifo:
            entry["MessageGroupId"] = event.subject or str(event.id)
            entry["MessageDeduplicationId"] = f"replay-{integration}-{event.id}-{stamp}"
        entries.append(entry)
    try:
        response = aws.client("sqs").send_message_batch(QueueUrl=queue_url, Entries=entries)
    except (BotoCoreError, ClientError) as error:
        result.failed.extend(f"{event.id}: {error}" for event in events)
        return
    for success in response.get("Successful", []):
        result.sent.append(str(events[int(success["Id"])].id))
    for failure in response.get("Failed", []):
        event = events[int(failure["Id"])]
        result.failed.append(f"{event.id}: {failure.get('Message', 'failed')}")
