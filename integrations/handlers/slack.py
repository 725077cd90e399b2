"""Slack incoming webhook: a short message about each new user."""

from integrations.base import Handler, HttpRequest
from integrations.handlers import USER_SIGNED_UP


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as markup, so text shows as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackHandler(Handler):
    """Post "New signup" to a channel. OPTIONS: WEBHOOK_URL, TIMEOUT."""

    event_types = (USER_SIGNED_UP,)
    required_options = ("WEBHOOK_URL",)
    idempotent = False  # incoming webhooks take no idempotency key

    def build_request(self, event):
        data = event.data if isinstance(event.data, dict) else {}
        name = str(data.get("name") or "someone")
        user_id = data.get("user_id", event.subject)
        return HttpRequest(
            method="POST",
            url=self.options.get("WEBHOOK_URL") or "https://hooks.slack.com/services/UNSET",
            json={"text": f"New signup: {escape_mrkdwn(name)} (user {user_id})"},
        )
