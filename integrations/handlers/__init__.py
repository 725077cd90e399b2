"""Built-in handlers: Heap, Mailchimp and Slack."""

USER_SIGNED_UP = "user.signed_up"
USER_LOGGED_IN = "user.logged_in"
