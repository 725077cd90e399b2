"""The whole slice in one process: signup view, relay, fan-out, consumers."""

import json

import pytest
from django.urls import reverse

from integrations.models import Delivery
from outbox.models import OutboxEvent
from outbox.relay import Relay

PASSWORD = "correct-horse-battery-staple-42"


def sign_up(client, email, name):
    return client.post(
        reverse("accounts:signup"),
        {"email": email, "name": name, "password1": PASSWORD, "password2": PASSWORD},
    )


def relay_all():
    import threading

    relay = Relay()
    try:
        relay.run(threading.Event(), interval=0, once=True)
    finally:
        relay.close()


@pytest.mark.django_db(transaction=True)
def test_signup_and_login_reach_their_integrations(
    client, fanout, third_parties, consume_until
):
    response = sign_up(client, "ada@example.com", "Ada Lovelace")
    assert response.status_code == 302
    assert client.login(username="ada@example.com", password=PASSWORD)

    relay_all()
    # Sign-up reaches heap, mailchimp and slack; login reaches heap.
    consume_until(lambda: Delivery.objects.filter(status="delivered").count() >= 4)

    signup = OutboxEvent.objects.get(type="user.signed_up")
    login = OutboxEvent.objects.get(type="user.logged_in")
    assert signup.status == "published"
    assert login.status == "published"
    assert signup.sns_message_id

    heap_bodies = [json.loads(r.get_data()) for r in third_parties.heap]
    assert sorted(b["event"] for b in heap_bodies) == ["user.logged_in", "user.signed_up"]
    assert {b["idempotency_key"] for b in heap_bodies} == {str(signup.id), str(login.id)}

    assert len(third_parties.mailchimp) == 1
    member = json.loads(third_parties.mailchimp[0].get_data())
    assert member["email_address"] == "ada@example.com"
    assert member["merge_fields"] == {"FNAME": "Ada Lovelace"}
    assert len(third_parties.slack) == 1

    statuses = dict(Delivery.objects.filter(event=signup).values_list("integration", "status"))
    assert statuses == {"heap": "delivered", "mailchimp": "delivered", "slack": "delivered"}
    login_statuses = dict(
        Delivery.objects.filter(event=login).values_list("integration", "status")
    )
    assert login_statuses == {"heap": "delivered"}
