"""Each event's status at each integration, as the admin and the demo show it."""

from __future__ import annotations

from integrations import registry
from integrations.models import Delivery

NOT_SUBSCRIBED = "not subscribed"
NOT_RECEIVED = "not received"


def subscriptions() -> dict[str, tuple[str, ...]]:
    """Map each enabled integration to the event types its filter policy lets in."""
    return {name: registry.event_types(name) for name in registry.enabled_names()}


def delivery_statuses(events) -> dict[str, dict[str, str]]:
    """Return {event id: {integration: status}} with one query for all events."""
    subscribed = subscriptions()
    rows = Delivery.objects.filter(event_id__in=[event.id for event in events]).values_list(
        "event_id", "integration", "status"
    )
    found = {(str(event_id), name): status for event_id, name, status in rows}
    table = {}
    for event in events:
        row = {}
        for name, event_types in subscribed.items():
            if event.type not in event_types:
                row[name] = NOT_SUBSCRIBED
            else:
                row[name] = found.get((str(event.id), name), NOT_RECEIVED)
        table[str(event.id)] = row
    return table
