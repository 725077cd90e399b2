"""The relay: claim pending events, publish them, record each outcome.

A claim is a lease. In one short transaction the relay marks a batch of
claimable rows with its id, a fresh claim token and an expiry time, using
``FOR UPDATE SKIP LOCKED`` so that concurrent relays take disjoint rows. It
publishes outside any transaction. Every write-back matches the claim token,
so a relay whose lease expired while it was slow cannot overwrite what the
relay that took the rows over recorded. Rows of a relay that died become
claimable again when its lease expires.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, connections, router, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from outbox import conf, signals, store
from outbox.messages import build_message
from outbox.models import OutboxEvent, RelayAttempt
from outbox.publishers import Publisher, PublishResult, get_publisher

logger = logging.getLogger(__name__)


@dataclass
class BatchStats:
    claimed: int = 0
    published: int = 0
    retrying: int = 0
    failed: int = 0
    outage: int = 0


def default_relay_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def retry_delay(attempts: int) -> float:
    """Return seconds until the next attempt: exponential, with equal jitter."""
    base = conf.get_positive_number("BACKOFF_BASE")
    ceiling = conf.get_positive_number("BACKOFF_MAX")
    delay = min(ceiling, base * 2 ** max(attempts - 1, 0))
    return delay / 2 + random.uniform(0, delay / 2)


class Relay:
    """Moves events from the outbox table to the broker, one batch at a time."""

    def __init__(
        self,
        batch_size: int | None = None,
        relay_id: str | None = None,
        publisher: Publisher | None = None,
    ):
        self.batch_size = int(batch_size or conf.get_positive_number("BATCH_SIZE"))
        self.relay_id = relay_id or default_relay_id()
        self.publisher = publisher or get_publisher()
        self.database = router.db_for_write(OutboxEvent)
        self.max_payload_bytes = int(conf.get_positive_number("MAX_MESSAGE_BYTES"))
        self.payload_prefix = conf.get("CLAIM_CHECK_PREFIX")
        # What ``run`` waits on between idle polls: a sleep, or LISTEN/NOTIFY.
        self.waiter = None

    def close(self) -> None:
        self.publisher.close()

    # Claiming -------------------------------------------------------------

    def claim(self) -> tuple[uuid.UUID, list[OutboxEvent]]:
        """Lease up to ``batch_size`` claimable events, oldest first."""
        token = uuid.uuid4()
        now = timezone.now()
        lease_until = now + timedelta(seconds=conf.get_positive_number("LEASE_SECONDS"))
        fifo = conf.is_fifo_topic()
        connection = connections[self.database]
        if connection.vendor == "postgresql":
            events = store.claim_postgresql(
                connection, self.relay_id, token, now, lease_until, self.batch_size, fifo
            )
            return token, events
        return token, self._claim_portable(token, now, lease_until, fifo)

    def _claim_portable(self, token, now, lease_until, fifo) -> list[OutboxEvent]:
        claimable = claimable_events(now, fifo)
        with transaction.atomic(using=self.database):
            ids = list(
                claimable.select_for_update(skip_locked=True)
                .order_by("created_at")
                .values_list("id", flat=True)[: self.batch_size]
            )
            # Repeat the conditions: without row locks (SQLite) another relay
            # may have claimed some of these rows since the SELECT.
            claimable.filter(id__in=ids).update(
                claimed_by=self.relay_id, claim_token=token, claimed_until=lease_until
            )
        return list(
            OutboxEvent.objects.using(self.database)
            .filter(claim_token=token)
            .order_by("created_at")
        )

    # One pass -------------------------------------------------------------

    def run_once(self) -> BatchStats:
        """Claim one batch, publish it and record every outcome."""
        token, events = self.claim()
        stats = BatchStats(claimed=len(events))
        if not events:
            return stats

        messages = [
            build_message(event, self.max_payload_bytes, self.payload_prefix)
            for event in events
        ]
        results = self.publisher.publish(messages)
        self._record(token, events, messages, results, stats)
        logger.info(
            "relayed batch: %s claimed, %s published, %s retrying, %s failed, %s outage",
            stats.claimed,
            stats.published,
            stats.retrying,
            stats.failed,
            stats.outage,
            extra={"relay": self.relay_id, "action": "batch", **stats.__dict__},
        )
        return stats

    def _record(self, token, events, messages, results: list[PublishResult], stats):
        by_id = {str(event.id): event for event in events}
        payload_keys = {m.event_id: m.payload_key for m in messages if m.payload_key}
        published = [r for r in results if r.ok]
        outage = [r for r in results if not r.ok and r.outage]
        rejected = [r for r in results if not r.ok and not r.outage]

        now = timezone.now()
        if published:
            written = store.mark_published(
                self.database, token, now, [(r.event_id, r.message_id) for r in published],
                payload_keys,
            )
            stats.published = written
            if written < len(published):
                logger.warning(
                    "lost %s leases before recording publication; another relay "
                    "owns those events now",
                    len(published) - written,
                    extra={"relay": self.relay_id},
                )
            signals.events_published.send(
                sender=OutboxEvent,
                event_ids=[uuid.UUID(r.event_id) for r in published],
                relay=self.relay_id,
            )
        if outage:
            stats.outage = len(outage)
            store.release(self.database, token, [r.event_id for r in outage], outage[0].error)
        for result in rejected:
            self._record_rejection(token, by_id[result.event_id], result.error, now, stats)

    def _record_rejection(self, token, event: OutboxEvent, error: str, now, stats):
        attempts = event.attempts + 1
        max_attempts = int(conf.get_positive_number("MAX_ATTEMPTS"))
        exhausted = attempts >= max_attempts
        changes = {
            "attempts": attempts,
            "last_error": error[:4000],
            "claimed_until": None,
            "next_attempt_at": now + timedelta(seconds=retry_delay(attempts)),
        }
        if exhausted:
            changes["status"] = OutboxEvent.Status.FAILED
        with transaction.atomic(using=self.database):
            updated = (
                OutboxEvent.objects.using(self.database)
                .filter(id=event.id, claim_token=token)
                .update(**changes)
            )
            if updated:
                RelayAttempt.objects.using(self.database).create(
                    event_id=event.id, relay=self.relay_id, error=error[:4000]
                )
        if not updated:
            return
        extra = {"event_id": str(event.id), "relay": self.relay_id, "attempts": attempts}
        if exhausted:
            stats.failed += 1
            logger.error("event failed after %s attempts: %s", attempts, error, extra=extra)
            signals.event_failed.send(sender=OutboxEvent, event_id=event.id, error=error)
        else:
            stats.retrying += 1
            logger.warning("publish rejected, will retry: %s", error, extra=extra)

    # Loop -----------------------------------------------------------------

    def run(self, stop: threading.Event, interval: float, once: bool = False) -> None:
        """Relay batches until ``stop`` is set, or until idle when ``once``."""
        waiter = self.waiter = make_waiter(self.database)
        outage_pause = 0.0
        try:
            while not stop.is_set():
                try:
                    stats = self.run_once()
                except DatabaseError:
                    logger.exception("database error in relay", extra={"relay": self.relay_id})
                    connections[self.database].close()
                    if once:
                        raise
                    stop.wait(interval)
                    continue
                if stats.outage:
                    outage_pause = min(
                        conf.get_positive_number("OUTAGE_BACKOFF_MAX"),
                        max(interval, outage_pause * 2 or 1.0),
                    )
                    logger.warning(
                        "broker outage, pausing %.1f s", outage_pause,
                        extra={"relay": self.relay_id, "pause": outage_pause},
                    )
                    if once:
                        return
                    stop.wait(outage_pause)
                    continue
                outage_pause = 0.0
                if stats.claimed == self.batch_size:
                    continue
                if once:
                    if stats.claimed == 0:
                        return
                    continue
                waiter.wait(stop, interval)
        finally:
            waiter.close()


def claimable_events(now, fifo: bool):
    queryset = OutboxEvent.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=OutboxEvent.Status.PENDING,
        next_attempt_at__lte=now,
    )
    if fifo:
        older_pending = OutboxEvent.objects.filter(
            status=OutboxEvent.Status.PENDING,
            subject=OuterRef("subject"),
            created_at__lt=OuterRef("created_at"),
        )
        queryset = queryset.filter(~Exists(older_pending))
    return queryset


class _SleepWaiter:
    def wait(self, stop: threading.Event, timeout: float) -> bool:
        """Sleep until the timeout or ``stop``; return False (no notification)."""
        stop.wait(timeout)
        return False

    def close(self) -> None:
        pass


class _NotifyWaiter:
    """Wait for PostgreSQL NOTIFY on the outbox channel, or the timeout.

    The LISTEN connection opens when the waiter is made and again on the
    wait after it failed, so a database restart degrades the relay to
    polling instead of stopping it. ``notified_wakeups`` counts the waits
    that a notification ended.
    """

    def __init__(self, database: str):
        self.database = database
        self.connection = None
        self.notified_wakeups = 0
        # LISTEN before the relay's first claim, so no commit falls between.
        self._reconnect()

    def _reconnect(self) -> bool:
        import psycopg

        try:
            self.connection = self._listen()
        except psycopg.Error:
            logger.warning(
                "LISTEN failed; polling until it succeeds", exc_info=True,
                extra={"action": "listen_failed"},
            )
            return False
        return True

    def _listen(self):
        from psycopg import sql

        wrapper = connections[self.database]
        connection = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            connection.autocommit = True
            connection.execute(
                sql.SQL("LISTEN {}").format(sql.Identifier(conf.get("NOTIFY_CHANNEL")))
            )
        except Exception:
            connection.close()
            raise
        return connection

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        """Return True if a notification ended the wait, False on timeout.

        After a reconnection it returns True at once, because notifications
        sent while no LISTEN was open are lost.
        """
        import psycopg

        if self.connection is None:
            if self._reconnect():
                return True
            stop.wait(timeout)
            return False
        try:
            notified = False
            for _ in self.connection.notifies(timeout=timeout, stop_after=1):
                notified = True
            # Notifications that arrived meanwhile are drained too, because
            # the next claim covers their rows.
            for _ in self.connection.notifies(timeout=0):
                pass
        except psycopg.Error:
            logger.warning(
                "LISTEN connection failed; polling every %.1f s until it reconnects",
                timeout, exc_info=True, extra={"action": "listen_failed"},
            )
            self.close()
            stop.wait(timeout)
            return False
        if notified:
            self.notified_wakeups += 1
        return notified

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def make_waiter(database: str):
    if conf.get("NOTIFY") and connections[database].vendor == "postgresql":
        return _NotifyWaiter(database)
    return _SleepWaiter()
