"""Claim-check storage keeps the first stored copy and surfaces storage outages."""

import pytest

from outbox import claimcheck
from outbox.api import record_event
from outbox.messages import build_message
from outbox.models import OutboxEvent
from outbox.publishers import SNSPublisher


def test_republish_keeps_stored_payload(payload_storage):
    claimcheck.store_payload("p/1.json", b'{"n": 1}')
    stored = payload_storage / "p" / "1.json"
    first_write = stored.stat().st_mtime_ns

    claimcheck.store_payload("p/1.json", b'{"n": 1}')

    assert stored.stat().st_mtime_ns == first_write
    assert claimcheck.load_payload("p/1.json") == {"n": 1}


@pytest.mark.django_db
def test_storage_failure_is_an_outage(fanout, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "outbox_payloads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": "/proc/outbox-cannot-write-here"},
        },
    }
    event = record_event("user.signed_up", {"blob": "x" * 300_000}, subject=1)
    message = build_message(event, 262_144, "outbox-payloads/")
    publisher = SNSPublisher()
    try:
        [result] = publisher.publish([message])
    finally:
        publisher.close()

    assert not result.ok
    assert result.outage
    assert "claim-check store" in result.error
    assert OutboxEvent.objects.get(id=event.id).attempts == 0



@pytest.mark.parametrize(
    "key, accepted",
    [
        ("outbox-payloads/1.json", True),
        ("outbox-payloads/a/b.json", True),
        ("outbox-payloads/../../etc/passwd", False),
        ("outbox-payloads/a/../../x", False),
        ("outbox-payloads//x", False),
        ("outbox-payloads/", False),
        ("/outbox-payloads/x", False),
        ("other/x.json", False),
        (["outbox-payloads/x"], False),
    ],
)
def test_payload_key_stays_under_prefix(key, accepted):
    assert claimcheck.is_payload_key(key) is accepted


def test_key_outside_storage_is_invalid_message(payload_storage):
    from outbox.exceptions import InvalidMessageError

    with pytest.raises(InvalidMessageError, match="outside the storage"):
        claimcheck.load_payload("../../etc/passwd")
