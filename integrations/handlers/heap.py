"""Heap server-side track API: one tracked event per outbox event."""

from integrations.base import Handler, HttpRequest
from integrations.exceptions import PermanentDeliveryError
from integrations.handlers import USER_LOGGED_IN, USER_SIGNED_UP

# Keys of the event data that are personal and stay out of Heap properties.
PERSONAL_KEYS = {"email", "name", "first_name", "last_name"}


class HeapHandler(Handler):
    """Track signups and logins. OPTIONS: APP_ID, BASE_URL, TIMEOUT."""

    event_types = (USER_SIGNED_UP, USER_LOGGED_IN)
    required_options = ("APP_ID",)

    def build_request(self, event):
        data = event.data if isinstance(event.data, dict) else {}
        identity = data.get("user_id", event.subject)
        if identity in (None, ""):
            raise PermanentDeliveryError(
                f"event {event.id} has neither data.user_id nor a subject to use "
                "as the Heap identity",
                integration=self.name,
                event_id=event.id,
            )
        properties = {k: v for k, v in data.items() if k not in PERSONAL_KEYS}
        base_url = self.options.get("BASE_URL", "https://heapanalytics.com").rstrip("/")
        return HttpRequest(
            method="POST",
            url=f"{base_url}/api/track",
            json={
                "app_id": str(self.options.get("APP_ID") or ""),
                "identity": str(identity),
                "event": event.type,
                "timestamp": event.time,
                "properties": properties,
                # Heap records nothing new for a repeated key, which backs up
                # the consumer's own de-duplication.
                "idempotency_key": event.id,
            },
        )
