"""Mailchimp Marketing API 3.0: add or update a list member on signup."""

import hashlib

from django.core.exceptions import ImproperlyConfigured

from integrations.base import Handler, HttpRequest
from integrations.exceptions import PermanentDeliveryError
from integrations.handlers import USER_SIGNED_UP


def subscriber_hash(email: str) -> str:
    """Return Mailchimp's member id: the MD5 hex digest of the lower-cased address."""
    return hashlib.md5(email.lower().encode("utf-8")).hexdigest()


class MailchimpHandler(Handler):
    """Upsert the new user as a list member.

    OPTIONS: API_KEY (ends in "-<data centre>"), LIST_ID, optional
    SERVER_PREFIX (the data centre, when the key has none), BASE_URL (for a
    local stand-in), STATUS_IF_NEW ("subscribed" by default; "pending" sends
    a confirmation e-mail first), NAME_MERGE_FIELD ("FNAME" by default).
    """

    event_types = (USER_SIGNED_UP,)
    required_options = ("API_KEY", "LIST_ID")

    def base_url(self) -> str:
        if self.options.get("BASE_URL"):
            return self.options["BASE_URL"].rstrip("/")
        prefix = self.options.get("SERVER_PREFIX")
        if not prefix:
            key = str(self.options.get("API_KEY") or "")
            prefix = key.rsplit("-", 1)[1] if "-" in key else ""
        if not prefix and self.transport == "console":
            prefix = "SERVER_PREFIX"
        if not prefix:
            raise ImproperlyConfigured(
                "Mailchimp OPTIONS need SERVER_PREFIX (e.g. 'us6') when API_KEY "
                "does not end in '-<data centre>'."
            )
        return f"https://{prefix}.api.mailchimp.com"

    def build_request(self, event):
        data = event.data if isinstance(event.data, dict) else {}
        email = data.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise PermanentDeliveryError(
                f"event {event.id} has no valid data.email for Mailchimp",
                integration=self.name,
                event_id=event.id,
            )
        list_id = self.options.get("LIST_ID") or "LIST_ID"
        merge_fields = {}
        if data.get("name"):
            merge_fields[self.options.get("NAME_MERGE_FIELD", "FNAME")] = data["name"]
        # PUT on the subscriber hash creates or updates the member, so a
        # repeated event leaves the list as it was.
        return HttpRequest(
            method="PUT",
            url=f"{self.base_url()}/3.0/lists/{list_id}/members/{subscriber_hash(email)}",
            json={
                "email_address": email,
                "status_if_new": self.options.get("STATUS_IF_NEW", "subscribed"),
                "merge_fields": merge_fields,
            },
            auth=("outbox", str(self.options.get("API_KEY") or "")),
        )
