"""Claim-check storage keeps the first stored copy and surfaces storage outages."""

import pytest

from outbox import claimcheck
from outbox.api import record_event
from outbox.messages import build_message
from outbox.models import OutboxEvent
from outbox.publishers import SNSPublisher


@pytest.fixture
def payload_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "outbox_payloads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "payloads")},
        },
    }
    return tmp_path / "payloads"


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

