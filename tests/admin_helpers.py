"""Users and events shared by the admin, dashboard and browser tests."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from integrations.models import Delivery
from outbox.models import OutboxEvent

PASSWORD = "staff-password-for-tests-7"
CHANGELIST = "admin:outbox_outboxevent_changelist"
DASHBOARD = "admin:outbox_outboxevent_dashboard"


def make_staff(username: str, *codenames: str):
    """Create a staff user holding the named permissions (app.codename)."""
    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@staff.example", password=PASSWORD,
        is_staff=True,
    )
    for name in codenames:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


VIEW_ONLY = ("outbox.view_outboxevent", "integrations.view_delivery")
OPERATOR = (*VIEW_ONLY, "outbox.change_outboxevent")


def signup_event(email="ada@example.com", name="Ada Lovelace", subject="7", **fields):
    data = {"user_id": int(subject) if subject.isdigit() else subject,
            "email": email, "name": name}
    return OutboxEvent.objects.create(
        type="user.signed_up", source="/tests", subject=subject, data=data, **fields
    )


def login_event(subject="7", **fields):
    return OutboxEvent.objects.create(
        type="user.logged_in", source="/tests", subject=subject,
        data={"user_id": subject}, **fields,
    )


def published(**fields):
    return {"status": OutboxEvent.Status.PUBLISHED, "published_at": timezone.now(),
            "sns_message_id": "sns-1", **fields}


def failed(**fields):
    return {"status": OutboxEvent.Status.FAILED, "attempts": 10,
            "last_error": "InvalidParameter: topic rejected", **fields}


def deliver(event, integration, status, attempts=1, error=""):
    return Delivery.objects.create(
        event_id=event.id, integration=integration, event_type=event.type,
        status=status, attempts=attempts, last_error=error,
    )


def changelist_url(query: str = "") -> str:
    return reverse(CHANGELIST) + (f"?{query}" if query else "")


def hours_ago(hours: float):
    return timezone.now() - timedelta(hours=hours)
