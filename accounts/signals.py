"""Receivers that write an outbox event for each account change.

They run inside the caller's transaction: the signup view's
``transaction.atomic`` block, or autocommit for ``createsuperuser``, where
the user row and the event are each committed at once. A receiver that
raises makes the signup fail and roll back.
"""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts import events
from outbox.api import record_event


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.signed_up")
def record_signup(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        record_event(events.USER_SIGNED_UP, events.signed_up_data(instance), subject=instance.pk)


@receiver(user_logged_in, dispatch_uid="accounts.logged_in")
def record_login(sender, request, user, **kwargs):
    record_event(events.USER_LOGGED_IN, events.logged_in_data(user), subject=user.pk)
