"""Celery tasks: the relay as a scheduled pass, and the retention purge.

Installed with the ``celery`` extra. The tasks are ``shared_task``s, so they
bind to the project's own Celery app once its ``autodiscover_tasks()`` or an
import of this module has run. A beat schedule that replaces the
long-running ``relay_outbox`` command::

    CELERY_BEAT_SCHEDULE = {
        "outbox-relay": {"task": "outbox.tasks.relay_pending", "schedule": 5.0},
        "outbox-purge": {
            "task": "outbox.tasks.purge_published",
            "schedule": crontab(hour=3, minute=0),
            "kwargs": {"older_than_days": 7},
        },
    }

Concurrent runs need no lock: each relay pass claims its rows with a lease
and writes back only rows whose claim token it holds, so two passes never
publish the same row at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task

from outbox import purge
from outbox.relay import Relay

logger = logging.getLogger(__name__)


@shared_task(name="outbox.tasks.relay_pending", ignore_result=True)
def relay_pending(batch_size: int | None = None) -> int:
    """Publish claimable events until none is left; return how many were claimed."""
    relay = Relay(batch_size=batch_size)
    claimed = 0
    try:
        while True:
            stats = relay.run_once()
            claimed += stats.claimed
            # Stop on an outage too: the next scheduled run retries, and a
            # worker slot is not held while the broker is down.
            if stats.claimed < relay.batch_size or stats.outage:
                break
    finally:
        relay.close()
    # A beat schedule runs this every few seconds, so idle passes log at DEBUG.
    level = logging.INFO if claimed else logging.DEBUG
    logger.log(
        level, "relay task claimed %s events", claimed,
        extra={"relay": relay.relay_id, "claimed": claimed},
    )
    return claimed


@shared_task(name="outbox.tasks.purge_published", ignore_result=True)
def purge_published(
    older_than_days: float = 7,
    batch_size: int | None = None,
    archive_storage: str | None = None,
) -> int:
    """Delete events published more than ``older_than_days`` days ago.

    ``archive_storage`` is a ``STORAGES`` alias that receives each batch as
    JSON Lines before it is deleted. Returns the number of events deleted.
    """
    options = {"archive_storage": archive_storage}
    if batch_size is not None:
        options["batch_size"] = batch_size
    result = purge.purge_published(timedelta(days=older_than_days), **options)
    logger.info(
        "purge task finished: %s events deleted", result.events,
        extra={"events": result.events, "batches": result.batches},
    )
    return result.events


def schedule_relay() -> None:
    """Queue one relay pass; ``record_event`` calls this on commit."""
    relay_pending.delay()
