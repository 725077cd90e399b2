"""The delivery rows that make consumers act once per event and integration."""

from __future__ import annotations

import enum
import logging
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.models import Delivery, DeliveryAttempt

logger = logging.getLogger(__name__)


class Decision(enum.Enum):
    DELIVER = "deliver"  # this consumer holds the lease and calls the third party
    DUPLICATE = "duplicate"  # already delivered: delete the copy
    BUSY = "busy"  # a consumer, maybe this one, holds a live lease on this delivery
    # This consumer holds the lease, but an earlier holder's lease expired in
    # the middle of a call: the third party may or may not have acted on it.
    RESUME = "resume"


def parse_event_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def begin(
    event_id: uuid.UUID,
    event_type: str,
    integration: str,
    owner: str,
    lease_seconds: float,
    sqs_message_id: str = "",
) -> tuple[Decision, Delivery | None]:
    """Take the delivery's lease, creating the row on the first copy."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds)
    with transaction.atomic():
        try:
            with transaction.atomic():
                delivery = Delivery.objects.create(
                    event_id=event_id,
                    integration=integration,
                    event_type=event_type,
                    status=Delivery.Status.IN_PROGRESS,
                    attempts=1,
                    lease_owner=owner,
                    lease_until=lease_until,
                    sqs_message_id=sqs_message_id,
                    created_at=now,
                    updated_at=now,
                )
            return Decision.DELIVER, delivery
        except IntegrityError:
            pass

        delivery = Delivery.objects.select_for_update().get(
            event_id=event_id, integration=integration
        )
        if delivery.status == Delivery.Status.DELIVERED:
            return Decision.DUPLICATE, delivery
        lease_is_live = delivery.lease_until is not None and delivery.lease_until > now
        # Busy also when this consumer holds the lease: two copies of one
        # message can arrive in one receive batch and run side by side.
        if delivery.status == Delivery.Status.IN_PROGRESS and lease_is_live:
            return Decision.BUSY, delivery
        outcome_unknown = delivery.status == Delivery.Status.IN_PROGRESS

        delivery.status = Delivery.Status.IN_PROGRESS
        delivery.attempts += 1
        delivery.lease_owner = owner
        delivery.lease_until = lease_until
        delivery.sqs_message_id = sqs_message_id
        delivery.updated_at = now
        delivery.save(
            update_fields=[
                "status", "attempts", "lease_owner", "lease_until", "sqs_message_id",
                "updated_at",
            ]
        )
        return (Decision.RESUME if outcome_unknown else Decision.DELIVER), delivery


def finish(
    delivery: Delivery,
    owner: str,
    status: str,
    error: str = "",
    response_status: int | None = None,
) -> bool:
    """Record the outcome of a call, if this consumer still holds the lease."""
    now = timezone.now()
    changes = {
        "status": status,
        "last_error": error[:4000],
        "response_status": response_status,
        "lease_until": None,
        "updated_at": now,
    }
    if status == Delivery.Status.DELIVERED:
        changes["delivered_at"] = now
    with transaction.atomic():
        updated = Delivery.objects.filter(pk=delivery.pk, lease_owner=owner).update(
            **changes
        )
        if updated:
            DeliveryAttempt.objects.create(
                delivery_id=delivery.pk,
                consumer=owner,
                outcome=status,
                response_status=response_status,
                error=error[:4000],
                attempted_at=now,
            )
    if updated:
        # Receivers of the delivery signals see the recorded outcome.
        for field, value in changes.items():
            setattr(delivery, field, value)
    else:
        logger.warning(
            "delivery lease lost before recording its outcome",
            extra={"delivery_id": delivery.pk, "event_id": str(delivery.event_id)},
        )
    return bool(updated)


def record_rejected(event_id: uuid.UUID, event_type: str, integration: str, error: str):
    """Record a message that was dead-lettered before any call was made."""
    now = timezone.now()
    delivery, _ = Delivery.objects.update_or_create(
        event_id=event_id,
        integration=integration,
        defaults={
            "event_type": event_type[:200],
            "status": Delivery.Status.DEAD_LETTERED,
            "last_error": error[:4000],
            "lease_until": None,
            "updated_at": now,
        },
        create_defaults={
            "event_type": event_type[:200],
            "status": Delivery.Status.DEAD_LETTERED,
            "last_error": error[:4000],
            "created_at": now,
            "updated_at": now,
        },
    )
    return delivery


def extend_leases(delivery_ids: list[int], owner: str, lease_seconds: float) -> int:
    until = timezone.now() + timedelta(seconds=lease_seconds)
    return Delivery.objects.filter(pk__in=delivery_ids, lease_owner=owner).update(
        lease_until=until
    )
