"""Claim-check storage for payloads too large for one SNS or SQS message.

Payloads go to a Django storage (S3 through django-storages in production,
the file system in the demo). Several integrations read one stored payload,
so consumers never delete it: expire it with an S3 lifecycle rule, or let
``purge_outbox`` remove it together with the event.
"""

from __future__ import annotations

import json
import logging
import posixpath
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from outbox import conf
from outbox.exceptions import InvalidMessageError

logger = logging.getLogger(__name__)


def get_storage():
    return storages[conf.get("CLAIM_CHECK_STORAGE")]


def store_payload(key: str, payload: bytes) -> None:
    """Write ``payload`` under ``key`` unless an earlier publish stored it.

    Keys contain the event id and event data never changes, so a stored copy
    is kept: replacing it would let a consumer of the earlier message find
    nothing between the delete and the write.
    """
    storage = get_storage()
    if storage.exists(key):
        return
    saved_name = storage.save(key, ContentFile(payload))
    if saved_name != key:
        raise RuntimeError(
            f"claim-check storage saved {key!r} as {saved_name!r}; use a storage "
            "that keeps file names (for S3, file_overwrite=True)"
        )
    logger.debug("stored claim-check payload", extra={"payload_key": key})


def is_payload_key(key: Any) -> bool:
    """Return whether ``key`` names an object under the claim-check prefix.

    A received message supplies the key, so it must not climb out of the
    prefix with ".." segments, start at the root or repeat separators.
    """
    if not isinstance(key, str):
        return False
    prefix = conf.get("CLAIM_CHECK_PREFIX")
    return (
        key.startswith(prefix)
        and len(key) > len(prefix)
        and not key.startswith("/")
        and posixpath.normpath(key) == key.rstrip("/")
        and ".." not in key.split("/")
    )


def load_payload(key: str) -> Any:
    """Read and decode the JSON data stored under ``key``."""
    storage = get_storage()
    try:
        with storage.open(key, "rb") as handle:
            content = handle.read()
    except FileNotFoundError as error:
        raise InvalidMessageError(f"claim-check payload {key!r} not found") from error
    except SuspiciousOperation as error:
        raise InvalidMessageError(
            f"claim-check key {key!r} is outside the storage: {error}"
        ) from error
    try:
        return json.loads(content.decode("utf-8", "surrogatepass"))
    except ValueError as error:
        raise InvalidMessageError(
            f"claim-check payload {key!r} is not JSON: {error}"
        ) from error


def delete_payload(key: str) -> None:
    storage = get_storage()
    if storage.exists(key):
        storage.delete(key)
