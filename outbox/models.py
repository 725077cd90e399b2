import uuid

from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower
from django.utils import timezone


class OutboxEvent(models.Model):
    """One event waiting for, or done with, publication to the SNS topic."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PUBLISHED = "published", "Published"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=200)
    source = models.CharField(max_length=200)
    subject = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    trace_parent = models.CharField(max_length=55, blank=True)

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    sns_message_id = models.CharField(max_length=100, blank=True)
    # Storage key of the payload when it was too large for one message.
    payload_key = models.CharField(max_length=300, blank=True)

    # Lease: the relay that claimed the row, the token that fences its
    # write-back, and when the claim expires so another relay may take over.
    claimed_by = models.CharField(max_length=100, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The relay's claim scans only pending rows, so the index stays
            # as small as the backlog however many published rows remain.
            models.Index(
                fields=["created_at"],
                name="outbox_pending_idx",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["status", "created_at"], name="outbox_status_idx"),
            models.Index(fields=["type", "created_at"], name="outbox_type_idx"),
            models.Index(fields=["subject"], name="outbox_subject_idx"),
            models.Index(fields=["created_at"], name="outbox_created_idx"),
            # The dashboard counts what was published in the last hour.
            models.Index(fields=["published_at"], name="outbox_published_idx"),
            # The admin finds a user's events by the e-mail address in the
            # data; the expression must match outbox.admin's search exactly.
            models.Index(
                Lower(KeyTextTransform("email", "data")), name="outbox_data_email_idx"
            ),
        ]
        permissions = [
            ("view_personal_data", "Can see personal data in event payloads"),
        ]

    def __str__(self):
        return f"{self.type} {self.id}"


class RelayAttempt(models.Model):
    """A failed attempt to publish an event, kept for the admin's history."""

    event = models.ForeignKey(
        OutboxEvent, on_delete=models.CASCADE, related_name="relay_attempts"
    )
    attempted_at = models.DateTimeField(default=timezone.now)
    relay = models.CharField(max_length=100, blank=True)
    error = models.TextField()

    class Meta:
        ordering = ["-attempted_at"]
        indexes = [
            # The dashboard counts events that failed in the last hour.
            models.Index(fields=["attempted_at"], name="relay_attempt_time_idx"),
        ]

    def __str__(self):
        return f"{self.event_id} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"
