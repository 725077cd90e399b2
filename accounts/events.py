"""Event types this app records, and the data each one carries."""

USER_SIGNED_UP = "user.signed_up"
USER_LOGGED_IN = "user.logged_in"


def signed_up_data(user) -> dict:
    return {"user_id": user.pk, "email": user.email, "name": user.get_full_name()}


def logged_in_data(user) -> dict:
    return {"user_id": user.pk}
