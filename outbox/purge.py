"""Retention: delete published events, their related rows and payloads in batches.

Only published events are removed, never pending or failed ones. Each batch
is one transaction that locks its rows and optionally writes them as JSON
Lines to a storage. It then deletes the rows that point at the events (relay
attempts, and other apps' deliveries found through Django's model relations,
so the outbox never imports them), and then the events. Claim-check payloads
are deleted after the batch commits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from outbox import claimcheck
from outbox.models import OutboxEvent

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
ARCHIVE_PREFIX = "outbox-archive/"


@dataclass
class PurgeResult:
    events: int = 0
    related: dict[str, int] = field(default_factory=dict)  # model label -> rows
    payloads: int = 0
    batches: int = 0
    archives: list[str] = field(default_factory=list)  # storage names written
    cutoff: datetime | None = None


def purge_published(
    older_than: timedelta,
    batch_size: int = DEFAULT_BATCH_SIZE,
    archive_storage: Storage | str | None = None,
    progress: Callable[[PurgeResult], None] | None = None,
) -> PurgeResult:
    """Delete events published more than ``older_than`` ago.

    ``archive_storage`` (a storage or a ``STORAGES`` alias) receives one
    JSON Lines file per batch before the batch is deleted. ``progress`` is
    called with the running totals after each batch.
    """
    if older_than < timedelta(0):
        raise ValueError(f"older_than must not be negative, got {older_than}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(archive_storage, str):
        archive_storage = storages[archive_storage]
    result = PurgeResult(cutoff=timezone.now() - older_than)
    started = timezone.now()
    while True:
        keys = _purge_batch(result, batch_size, archive_storage, started)
        if keys is None:
            break
        result.payloads += _delete_payloads(keys)
        if progress is not None:
            progress(result)
    logger.info(
        "purged %s published events", result.events,
        extra={"action": "purge", "events": result.events, "batches": result.batches},
    )
    return result


def _purge_batch(result, batch_size, archive_storage, started) -> list[str] | None:
    """Purge one batch; return its payload keys, or None when nothing is left."""
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update()
            .filter(status=OutboxEvent.Status.PUBLISHED, published_at__lt=result.cutoff)
            .order_by("published_at")[:batch_size]
        )
        if not events:
            return None
        ids = [event.id for event in events]
        result.batches += 1
        if archive_storage is not None:
            name = _archive_name(started, result.batches)
            _write_archive(archive_storage, name, events)
            result.archives.append(name)
        for relation in _pointing_relations(OutboxEvent):
            _count(result, relation.related_model._base_manager.filter(
                **{f"{relation.field.name}__in": ids}
            ).delete())
        deleted = OutboxEvent.objects.filter(id__in=ids).delete()
        result.events += deleted[1].get(OutboxEvent._meta.label, 0)
        _count(result, deleted, skip=OutboxEvent._meta.label)
    return [event.payload_key for event in events if event.payload_key]


def _pointing_relations(model) -> list:
    """Return relations whose rows Django would not delete with ``model``'s."""
    return [
        relation for relation in model._meta.related_objects
        if relation.on_delete is models.DO_NOTHING
    ]


def _count(result: PurgeResult, deleted, skip: str = "") -> None:
    for label, count in deleted[1].items():
        if label != skip and count:
            result.related[label] = result.related.get(label, 0) + count


def _delete_payloads(keys: list[str]) -> int:
    deleted = 0
    for key in keys:
        try:
            claimcheck.delete_payload(key)
        except OSError as error:
            logger.warning(
                "claim-check payload not deleted: %s", error, extra={"payload_key": key}
            )
            continue
        deleted += 1
    return deleted


# Archive --------------------------------------------------------------------


def _archive_name(started: datetime, batch: int) -> str:
    return f"{ARCHIVE_PREFIX}{started:%Y%m%dT%H%M%SZ}-{batch:05d}.jsonl"


def _write_archive(storage: Storage, name: str, events: list[OutboxEvent]) -> None:
    related = _related_rows(OutboxEvent, [event.id for event in events])
    lines = []
    for event in events:
        record = _row(event)
        for key, rows_by_parent in related.items():
            record[key] = rows_by_parent.get(event.id, [])
        lines.append(json.dumps(record, cls=DjangoJSONEncoder, ensure_ascii=False))
    saved = storage.save(name, ContentFile(("\n".join(lines) + "\n").encode("utf-8")))
    if saved != name:
        logger.info("archive saved under another name", extra={"archive": saved})


def _related_rows(model, ids, depth: int = 2) -> dict[str, dict]:
    """Return {relation name: {parent id: [row dicts]}} for rows pointing at ``ids``."""
    if depth == 0 or not ids:
        return {}
    found = {}
    for relation in model._meta.related_objects:
        field_name = relation.field.name
        rows = list(
            relation.related_model._base_manager.filter(**{f"{field_name}__in": ids})
        )
        children = _related_rows(relation.related_model, [row.pk for row in rows], depth - 1)
        by_parent: dict = {}
        for row in rows:
            record = _row(row)
            for key, rows_by_parent in children.items():
                record[key] = rows_by_parent.get(row.pk, [])
            by_parent.setdefault(getattr(row, relation.field.attname), []).append(record)
        found[relation.get_accessor_name()] = by_parent
    return found


def _row(instance) -> dict:
    return {
        field.attname: getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
    }
