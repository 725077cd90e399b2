from django.db import models
from django.utils import timezone


class Delivery(models.Model):
    """One event at one integration: the consumer's inbox row.

    The (event, integration) pair is unique, so however many copies of a
    message arrive, one row decides whether the third party was called. A
    consumer takes the row with a lease before calling, so two consumers
    holding copies of one message cannot both call.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        DELIVERED = "delivered", "Delivered"
        RETRYING = "retrying", "Retrying"
        DEAD_LETTERED = "dead_lettered", "Dead-lettered"

    # No database constraint: consumers may run against a database that
    # never held the outbox row, and purging events removes deliveries itself.
    event = models.ForeignKey(
        "outbox.OutboxEvent",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="deliveries",
    )
    integration = models.CharField(max_length=40)
    event_type = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    sqs_message_id = models.CharField(max_length=100, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["integration"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "integration"], name="delivery_event_integration_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["integration", "status"], name="delivery_status_idx"),
        ]

    def __str__(self):
        return f"{self.event_id} at {self.integration}: {self.status}"


class DeliveryAttempt(models.Model):
    """One call of a handler for a delivery, kept for the admin's history."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="history")
    attempted_at = models.DateTimeField(default=timezone.now)
    consumer = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=16, choices=Delivery.Status.choices)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-attempted_at"]

    def __str__(self):
        return f"{self.delivery_id} {self.outcome} at {self.attempted_at:%H:%M:%S}"
