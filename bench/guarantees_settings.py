"""Settings for processes started by the chaos run and the guarantees tests.

They are ``project.settings`` plus overrides of ``OUTBOX`` and
``INTEGRATIONS`` keys given as JSON objects in the environment variables
``OUTBOX_OVERRIDES`` and ``INTEGRATIONS_OVERRIDES``, for example
``OUTBOX_OVERRIDES='{"LEASE_SECONDS": 2}'``. A handler entry in
``INTEGRATIONS_OVERRIDES["HANDLERS"]`` replaces the project's entry of
that name.
"""

import json
import os

from project.settings import *  # noqa: F403
from project.settings import INTEGRATIONS, OUTBOX


def _overrides(variable: str) -> dict:
    text = os.environ.get(variable) or "{}"
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"{variable} must be a JSON object, got {text!r}")
    return value


OUTBOX = {**OUTBOX, **_overrides("OUTBOX_OVERRIDES")}

_integration_overrides = _overrides("INTEGRATIONS_OVERRIDES")
INTEGRATIONS = {
    **INTEGRATIONS,
    **_integration_overrides,
    "HANDLERS": {
        **INTEGRATIONS["HANDLERS"],
        **_integration_overrides.get("HANDLERS", {}),
    },
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
