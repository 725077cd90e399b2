"""Each event's status at each integration, and the figures of each queue.

The admin, the demo, ``outbox_stats`` and the metrics endpoint read them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Min
from django.utils import timezone

from integrations import dlq as dead_letters
from integrations import fanout, registry
from integrations.models import Delivery
from outbox import aws

logger = logging.getLogger(__name__)

NOT_SUBSCRIBED = "not subscribed"
NOT_RECEIVED = "not received"
LABELS = {
    Delivery.Status.DELIVERED: "delivered",
    Delivery.Status.RETRYING: "retrying",
    Delivery.Status.IN_PROGRESS: "in progress",
    Delivery.Status.DEAD_LETTERED: "dead-lettered",
    NOT_SUBSCRIBED: NOT_SUBSCRIBED,
    NOT_RECEIVED: NOT_RECEIVED,
}


@dataclass(frozen=True)
class DeliveryState:
    """An event's state at one integration, as one list cell shows it."""

    status: str  # a Delivery.Status value, NOT_SUBSCRIBED or NOT_RECEIVED
    attempts: int = 0

    @property
    def label(self) -> str:
        label = LABELS.get(self.status, self.status)
        if self.status in (Delivery.Status.RETRYING, Delivery.Status.IN_PROGRESS):
            return f"{label} ({self.attempts})"
        return label


def subscriptions() -> dict[str, tuple[str, ...]]:
    """Map each enabled integration to the event types its filter policy lets in."""
    return {name: registry.event_types(name) for name in registry.enabled_names()}


def delivery_states(events, subscribed=None) -> dict[str, dict[str, DeliveryState]]:
    """Return {event id: {integration: state}} with one query for all events."""
    subscribed = subscriptions() if subscribed is None else subscribed
    rows = Delivery.objects.filter(
        event_id__in=[event.id for event in events], integration__in=list(subscribed)
    ).values_list("event_id", "integration", "status", "attempts")
    found = {
        (str(event_id), name): DeliveryState(status, attempts)
        for event_id, name, status, attempts in rows
    }
    table = {}
    for event in events:
        row = {}
        for name, event_types in subscribed.items():
            if event.type not in event_types:
                row[name] = DeliveryState(NOT_SUBSCRIBED)
            else:
                row[name] = found.get((str(event.id), name), DeliveryState(NOT_RECEIVED))
        table[str(event.id)] = row
    return table


def delivery_statuses(events) -> dict[str, dict[str, str]]:
    """Return {event id: {integration: status}} with one query for all events."""
    return {
        event_id: {name: state.status for name, state in row.items()}
        for event_id, row in delivery_states(events).items()
    }


# Queues ---------------------------------------------------------------------


def queue_figures() -> dict[str, dict]:
    """Return each enabled integration's queue and dead-letter queue figures.

    A queue that cannot be read gets an ``error`` entry instead of numbers,
    so one missing queue does not hide the others.
    """
    figures = {}
    for name in registry.enabled_names():
        try:
            figures[name] = _integration_figures(name)
        except (BotoCoreError, ClientError, ImproperlyConfigured) as error:
            logger.warning(
                "queue figures unavailable: %s", error, extra={"integration": name}
            )
            figures[name] = {"error": str(error)}
    return figures


def _integration_figures(name: str) -> dict:
    sqs = aws.client("sqs")
    queue = sqs.get_queue_attributes(
        QueueUrl=fanout.queue_url(name),
        AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    dlq_url = fanout.queue_url(name, dead_letter=True)
    dlq = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    dead_letter = int(dlq.get("ApproximateNumberOfMessages", 0))
    oldest = _cloudwatch_oldest_age(fanout.queue_name(name))
    if oldest is None:
        oldest = _oldest_unfinished_delivery_age(name)
    dlq_oldest = _cloudwatch_oldest_age(fanout.queue_name(name, dead_letter=True))
    if dlq_oldest is None and dead_letter:
        dlq_oldest = dead_letters.oldest_message_age(name)
    return {
        "waiting": int(queue.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(queue.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "dead_letter": dead_letter,
        "oldest_age_seconds": oldest,
        "dead_letter_oldest_age_seconds": dlq_oldest,
    }


def _cloudwatch_oldest_age(queue_name: str) -> float | None:
    """Return CloudWatch's latest ApproximateAgeOfOldestMessage, if it has one.

    SQS publishes this metric to CloudWatch only, not as a queue attribute.
    Local AWS stand-ins (moto 5.2) record no SQS metrics, so this returns None.
    """
    now = timezone.now()
    try:
        response = aws.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue_name}],
            StartTime=now - timedelta(minutes=10),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )
    except (BotoCoreError, ClientError) as error:
        logger.debug("CloudWatch age unavailable: %s", error, extra={"queue": queue_name})
        return None
    points = sorted(response.get("Datapoints", []), key=lambda point: point["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def _oldest_unfinished_delivery_age(name: str) -> float | None:
    """Return the age of the oldest delivery still retrying or in progress.

    Such a delivery's message is still in the queue, so this is a lower bound
    on the age of its oldest message when CloudWatch has no figure.
    """
    oldest = Delivery.objects.filter(
        integration=name,
        status__in=[Delivery.Status.RETRYING, Delivery.Status.IN_PROGRESS],
    ).aggregate(oldest=Min("created_at"))["oldest"]
    if oldest is None:
        return None
    return max(0.0, (timezone.now() - oldest).total_seconds())
