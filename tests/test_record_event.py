"""record_event rejects what it could not store or send, naming the value."""

import uuid

import pytest

from outbox.api import record_event
from outbox.exceptions import EventRecordError
from outbox.models import OutboxEvent


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, message",
    [
        ({"score": float("nan")}, "not JSON-serialisable"),
        ({"score": float("inf")}, "not JSON-serialisable"),
        ({"blob": object()}, "not JSON-serialisable"),
        ({"name": "a\x00b"}, r"data\['name'\] .* U\+0000"),
        ({"tags": ["ok", "\ud800"]}, r"data\['tags'\]\[1\] .* U\+D800"),
        ({"bad\x00key": 1}, r"data key 'bad\\x00key' .* U\+0000"),
    ],
)
def test_unstorable_data_rejected(data, message):
    with pytest.raises(EventRecordError, match=message):
        record_event("user.signed_up", data, subject=1)

    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("event_type", ["", "has space", "x" * 201, None, ".leading"])
def test_invalid_event_type_rejected(event_type):
    with pytest.raises(EventRecordError, match="invalid event type"):
        record_event(event_type, {})


@pytest.mark.django_db
def test_long_subject_rejected():
    with pytest.raises(EventRecordError, match="maximum is 200"):
        record_event("a.b", {}, subject="s" * 201)


@pytest.mark.django_db
def test_data_normalised_through_json():
    event_id = uuid.uuid4()
    event = record_event("a.b", {"id": event_id, "emoji": "🚀", "n": 1.5}, subject=7)

    stored = OutboxEvent.objects.get(id=event.id)
    assert stored.data == {"id": str(event_id), "emoji": "🚀", "n": 1.5}
    assert stored.subject == "7"
