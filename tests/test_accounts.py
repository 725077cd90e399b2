"""Signup and login write their events in the same transaction as the change."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts import signals as account_signals
from outbox.exceptions import EventRecordError
from outbox.models import OutboxEvent

PASSWORD = "correct-horse-battery-staple-42"
User = get_user_model()


def signup_form(**overrides):
    fields = {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    fields.update(overrides)
    return fields


@pytest.mark.django_db
def test_signup_records_one_event(client):
    response = client.post(reverse("accounts:signup"), signup_form())

    assert response.status_code == 302
    user = User.objects.get()
    event = OutboxEvent.objects.get()
    assert event.type == "user.signed_up"
    assert event.subject == str(user.pk)
    assert event.data == {"user_id": user.pk, "email": "ada@example.com", "name": "Ada Lovelace"}
    assert event.status == OutboxEvent.Status.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"email": "not-an-address"}, "email"),
        ({"name": ""}, "name"),
        ({"password1": "short", "password2": "short"}, "password2"),
        ({"password1": "12345678901", "password2": "12345678901"}, "password2"),
        ({"password2": "something-else-entirely"}, "password2"),
        ({"email": "b" * 140 + "@example.com"}, "email"),
        ({"name": "a" * 151}, "name"),
        ({"name": "Ada\x07 Bell"}, "name"),
        ({"name": "Ada\u202eecalevoL"}, "name"),
        ({"name": "Ada\nLovelace"}, "name"),
    ],
)
def test_signup_invalid_form_records_nothing(client, overrides, field):
    response = client.post(reverse("accounts:signup"), signup_form(**overrides))

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not User.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_signup_keeps_emoji_sequences(client):
    family = "Ada \U0001F468\u200d\U0001F469\u200d\U0001F467"
    response = client.post(reverse("accounts:signup"), signup_form(name=family))

    assert response.status_code == 302
    assert OutboxEvent.objects.get().data["name"] == family


@pytest.mark.django_db
def test_signup_duplicate_email_rejected(client):
    client.post(reverse("accounts:signup"), signup_form())
    response = client.post(reverse("accounts:signup"), signup_form(email="ADA@example.com"))

    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert User.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


@pytest.mark.django_db
def test_signup_requires_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("accounts:signup"), signup_form())

    assert response.status_code == 403
    assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_signup_rollback_leaves_no_event():
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            User.objects.create_user("ada@example.com", "ada@example.com", PASSWORD)
            assert OutboxEvent.objects.count() == 1
            raise RuntimeError("the signup failed after the user row was written")

    assert not User.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_event_write_failure_fails_signup(client, monkeypatch):
    def broken_data(user):
        return {"user_id": user.pk, "not json": object()}

    monkeypatch.setattr(account_signals.events, "signed_up_data", broken_data)
    with pytest.raises(EventRecordError):
        client.post(reverse("accounts:signup"), signup_form())

    assert not User.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_createsuperuser_records_event_in_autocommit(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command(
        "createsuperuser", "--noinput", username="root", email="root@example.com",
        verbosity=0,
    )

    user = User.objects.get(username="root")
    event = OutboxEvent.objects.get()
    assert event.type == "user.signed_up"
    assert event.subject == str(user.pk)


@pytest.mark.django_db(transaction=True)
def test_require_transaction_rejects_autocommit(settings):
    settings.OUTBOX = {**settings.OUTBOX, "REQUIRE_TRANSACTION": True}
    with pytest.raises(Exception, match="outside a transaction"):
        User.objects.create_user("ada@example.com", "ada@example.com", PASSWORD)

    # The user row was committed by autocommit before the receiver raised:
    # this is why the setting is off by default.
    assert User.objects.filter(username="ada@example.com").exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_login_records_logged_in_event(client):
    User.objects.create_user("ada@example.com", "ada@example.com", PASSWORD)
    response = client.post(
        reverse("accounts:login"), {"username": "ada@example.com", "password": PASSWORD}
    )

    assert response.status_code == 302
    login = OutboxEvent.objects.get(type="user.logged_in")
    assert login.data == {"user_id": User.objects.get().pk}


@pytest.mark.django_db
def test_failed_login_records_nothing(client):
    User.objects.create_user("ada@example.com", "ada@example.com", PASSWORD)
    response = client.post(
        reverse("accounts:login"), {"username": "ada@example.com", "password": "wrong"}
    )

    assert response.status_code == 200
    assert not OutboxEvent.objects.filter(type="user.logged_in").exists()
