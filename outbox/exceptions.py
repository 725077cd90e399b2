"""Exceptions raised by the outbox app."""


class OutboxError(Exception):
    """Base class of every error the outbox app raises."""


class EventRecordError(OutboxError, ValueError):
    """An event could not be recorded: its type, subject or data is invalid."""


class TransactionRequiredError(OutboxError, RuntimeError):
    """An event was recorded outside a transaction while one is required."""


class PublishError(OutboxError):
    """Publishing failed for reasons that are not one event's fault."""


class PublishOutage(PublishError):
    """The message broker is unreachable, throttling or failing as a whole.

    The relay pauses and retries the same events later without counting the
    attempt against them.
    """


class InvalidMessageError(OutboxError, ValueError):
    """A received message is not a valid CloudEvent from this outbox."""
