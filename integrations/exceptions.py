"""Exceptions raised by integration handlers and the consumer."""


class IntegrationError(Exception):
    """Base class of every error the integrations app raises."""


class DeliveryError(IntegrationError):
    """A handler could not deliver an event to its third party."""

    def __init__(self, message, *, integration="", event_id="", status=None):
        super().__init__(message)
        self.integration = integration
        self.event_id = event_id
        self.status = status


class TransientDeliveryError(DeliveryError):
    """Worth retrying later: timeouts, connection errors, 408, 429 and 5xx."""

    def __init__(self, message, *, retry_after=None, **context):
        super().__init__(message, **context)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: other 4xx responses or an event the handler rejects."""
