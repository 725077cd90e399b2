"""The delivery row as the consumer's inbox."""

import uuid

import pytest

from integrations import inbox


@pytest.mark.django_db
def test_finish_updates_delivery_instance():
    decision, delivery = inbox.begin(uuid.uuid4(), "user.signed_up", "heap", "c1", 60)
    inbox.finish(delivery, "c1", "delivered", response_status=200)

    assert decision is inbox.Decision.DELIVER
    assert delivery.status == "delivered"
    assert delivery.response_status == 200
    assert delivery.delivered_at is not None
    assert delivery.lease_until is None
