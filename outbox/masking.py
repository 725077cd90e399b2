"""Masking of personal data in event payloads and errors shown to staff.

Staff without the ``outbox.view_personal_data`` permission see e-mail
addresses and names with all but their first character replaced, so they
can still tell two people apart in a list without reading who they are.
"""

from __future__ import annotations

import re
from typing import Any

PERSONAL_DATA_PERMISSION = "outbox.view_personal_data"

# Keys whose values are personal data whatever they contain.
PERSONAL_KEYS = frozenset({
    "email", "email_address", "name", "first_name", "last_name", "full_name",
    "fname", "lname", "phone", "phone_number", "address", "ip", "ip_address",
})
EMAIL_PATTERN = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+(\.[A-Za-z]{2,})")
MASK = "***"


def can_view_personal_data(user) -> bool:
    return user.has_perm(PERSONAL_DATA_PERMISSION)


def mask_text(value: str) -> str:
    """Replace every e-mail address in ``value`` with ``a***@***.com``."""
    return EMAIL_PATTERN.sub(lambda match: f"{match[1]}{MASK}@{MASK}{match[2]}", value)


def mask_value(value: Any) -> Any:
    if isinstance(value, str):
        if EMAIL_PATTERN.search(value):
            return mask_text(value)
        return f"{value[:1]}{MASK}" if value else value
    if value is None:
        return None
    return MASK


def mask_data(data: Any) -> Any:
    """Return a copy of ``data`` with personal values masked at any depth."""
    if isinstance(data, dict):
        return {
            key: mask_value(value)
            if str(key).lower() in PERSONAL_KEYS and not isinstance(value, (dict, list))
            else mask_data(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [mask_data(item) for item in data]
    if isinstance(data, str):
        return mask_text(data)
    return data
