"""Whole-batch SQL for the relay: one statement per claim and per write-back.

PostgreSQL gets hand-written statements (``UPDATE ... RETURNING`` over a
``SKIP LOCKED`` subquery, ``jsonb_to_recordset`` for per-row values). Other databases
use portable ORM updates, one per row, inside one transaction.
"""

from __future__ import annotations

import json
import uuid

from django.db import connections, transaction

from outbox.models import OutboxEvent

TABLE = OutboxEvent._meta.db_table
CLAIMED_COLUMNS = (
    "id", "type", "source", "subject", "data", "created_at", "trace_parent",
    "attempts", "payload_key",
)

_FIFO_CONDITION = f"""
    AND NOT EXISTS (
        SELECT 1 FROM {TABLE} AS older
        WHERE older.subject = candidate.subject
          AND older.status = 'pending'
          AND older.created_at < candidate.created_at
    )
"""

# The UPDATE finds its rows through ``id = ANY(ARRAY(...))``, a primary-key
# lookup. Joining the CTE instead lets the planner hash-join against a
# sequential scan of the whole table, which grows with the published rows.
_CLAIM_SQL = """
UPDATE {table} AS event
SET claimed_by = %(relay)s, claim_token = %(token)s, claimed_until = %(until)s
WHERE event.id = ANY(ARRAY(
    SELECT candidate.id FROM {table} AS candidate
    WHERE candidate.status = 'pending'
      AND candidate.next_attempt_at <= %(now)s
      AND (candidate.claimed_until IS NULL OR candidate.claimed_until < %(now)s)
      {fifo}
    ORDER BY candidate.created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
))
RETURNING {columns}
"""


def claim_postgresql(connection, relay_id, token, now, lease_until, limit, fifo):
    """Lease up to ``limit`` events in one statement and return them."""
    query = _CLAIM_SQL.format(
        table=TABLE,
        fifo=_FIFO_CONDITION if fifo else "",
        columns=", ".join(f"event.{column}" for column in CLAIMED_COLUMNS),
    )
    parameters = {
        "now": now, "limit": limit, "relay": relay_id, "token": token, "until": lease_until,
    }
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(query, parameters)
        rows = cursor.fetchall()
    events = [_event_from_row(connection.alias, row, token) for row in rows]
    events.sort(key=lambda event: event.created_at)
    return events


def _event_from_row(alias, row, token) -> OutboxEvent:
    # Model.from_db takes values by position and skips the defaults of the
    # columns not read, in half the time of keyword construction. Those
    # columns are deferred: reading one costs a query.
    event = OutboxEvent.from_db(alias, CLAIMED_COLUMNS, row)
    if isinstance(event.data, str):
        event.data = json.loads(event.data)
    event.claim_token = token
    return event


def mark_published(database, token, now, published, payload_keys) -> int:
    """Record (event id, SNS message id) pairs as published; return rows written.

    Rows whose claim token changed belong to another relay now and are left
    untouched.
    """
    connection = connections[database]
    if connection.vendor == "postgresql":
        # One JSON parameter for all rows: psycopg quotes array parameters
        # element by element in Python, which cost more than the UPDATE.
        rows = json.dumps([
            {"id": event_id, "message_id": message_id,
             "payload_key": payload_keys.get(event_id, "")}
            for event_id, message_id in published
        ])
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {TABLE} AS event
                SET status = 'published', published_at = %s, sns_message_id = v.message_id,
                    payload_key = v.payload_key, claimed_until = NULL, last_error = ''
                FROM jsonb_to_recordset(%s::jsonb)
                    AS v(id uuid, message_id text, payload_key text)
                WHERE event.id = v.id AND event.claim_token = %s
                """,
                [now, rows, token],
            )
            return cursor.rowcount

    written = 0
    with transaction.atomic(using=database):
        for event_id, message_id in published:
            written += OutboxEvent.objects.using(database).filter(
                id=event_id, claim_token=token
            ).update(
                status=OutboxEvent.Status.PUBLISHED,
                published_at=now,
                sns_message_id=message_id,
                payload_key=payload_keys.get(event_id, ""),
                claimed_until=None,
                last_error="",
            )
    return written


def release(database, token, event_ids, error: str) -> int:
    """Give rows back without charging an attempt (the broker was down)."""
    return OutboxEvent.objects.using(database).filter(
        id__in=event_ids, claim_token=token
    ).update(claimed_until=None, last_error=error[:4000])
