"""Claim time as published history grows: 10,000 against 5,000,000 rows.

The table holds a backlog of pending events and a number of published
ones. Each measurement times the relay's claim statement over many batches,
marking each batch published as the relay does. The secondary
indexes are dropped while history is bulk-inserted and built again after,
as a restore would; the claim then runs against every index the
migrations create.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from common import (
    median, parser, percentile, record, seed_pending_events, setup_django, truncate,
    vacuum_analyze,
)

TABLE = "outbox_outboxevent"
CHUNK = 500_000


def add_published_history(existing: int, target: int) -> None:
    """Insert published rows numbered ``existing + 1`` to ``target``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname NOT LIKE %s", [TABLE, "%_pkey"],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for start in range(existing + 1, target + 1, CHUNK):
            end = min(target, start + CHUNK - 1)
            cursor.execute(_HISTORY_SQL, [start, end])
            print(f"  history rows {end:,}", flush=True)
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)


# Ids count up, so the primary key grows at its right edge as with
# time-ordered ids. Rows are days old, subjects repeat every 100,000 rows.
_HISTORY_SQL = f"""
INSERT INTO {TABLE} (
    id, type, source, subject, data, created_at, trace_parent, status, attempts,
    next_attempt_at, last_error, published_at, sns_message_id, payload_key,
    claimed_by
)
SELECT lpad(to_hex(n), 32, '0')::uuid, 'user.signed_up', '/bench',
       (n %% 100000)::text,
       jsonb_build_object('user_id', n, 'email', 'user' || n || '@example.com'),
       now() - interval '30 days' + n * interval '100 microseconds', '', 'published',
       1, now() - interval '30 days', '',
       now() - interval '30 days' + n * interval '100 microseconds',
       'message-' || n, '', ''
FROM generate_series(%s::bigint, %s::bigint) AS n
"""


def claim_seconds(batch: int, fifo: bool, repetitions: int) -> list[float]:
    """Time the claim statement of ``repetitions`` relay batches.

    Each batch is then marked published as the relay does, so the claims
    see the table a running relay leaves behind, not piled-up rollbacks.
    """
    from django.db import connection
    from django.utils import timezone

    from outbox import store

    timings = []
    for _ in range(repetitions):
        token, now = uuid.uuid4(), timezone.now()
        start = time.perf_counter()
        events = store.claim_postgresql(
            connection, "bench", token, now, now + timedelta(seconds=60), batch, fifo
        )
        timings.append(time.perf_counter() - start)
        if len(events) != batch:
            raise SystemExit(f"claimed {len(events)} events, expected {batch}")
        published = [(str(event.id), "message") for event in events]
        store.mark_published("default", token, now, published, {})
    return timings


def measure(pending, batch, repetitions):
    timings = {}
    for fifo in (False, True):
        seed_pending_events(pending)
        vacuum_analyze(TABLE)
        timings[fifo] = claim_seconds(batch, fifo, repetitions)
        truncate_pending()
    return timings


def create_fifo_index():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS bench_pending_subject_idx ON {TABLE} "
            "(subject, created_at) WHERE status = 'pending'"
        )


def drop_fifo_index():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS bench_pending_subject_idx")


def truncate_pending():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE status <> 'published' "
            "OR sns_message_id = 'message'"
        )


def main():
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--small", type=int, default=10_000,
                           help="Published rows in the first measurement.")
    arguments.add_argument("--large", type=int, default=5_000_000,
                           help="Published rows in the second measurement.")
    arguments.add_argument("--pending", type=int, default=5_000,
                           help="Pending rows in both measurements.")
    arguments.add_argument("--batch", type=int, default=100, help="Events per claim.")
    arguments.add_argument("--repetitions", type=int, default=100,
                           help="Claims timed per measurement.")
    arguments.add_argument(
        "--fifo-index", action="store_true",
        help="Add a partial index on (subject, created_at) of pending rows before "
        "measuring, to show its effect on FIFO claims.",
    )
    options = arguments.parse_args()
    setup_django()

    drop_fifo_index()
    truncate(TABLE)
    add_published_history(0, options.small)
    if options.fifo_index:
        create_fifo_index()
    pending = options.pending + options.batch * options.repetitions
    small = measure(pending, options.batch, options.repetitions)
    started = time.perf_counter()
    add_published_history(options.small, options.large)
    print(f"  grew history in {time.perf_counter() - started:.0f} s", flush=True)
    large = measure(pending, options.batch, options.repetitions)
    truncate(TABLE)
    drop_fifo_index()

    rows = []
    for fifo, label in ((False, "standard topic"), (True, "FIFO topic")):
        for name, function in (("median", median), ("p99", lambda v: percentile(v, 0.99))):
            big, base = function(large[fifo]) * 1000, function(small[fifo]) * 1000
            rows.append((
                f"claim of {options.batch}, {label}, {name}, "
                f"{options.large:,} published rows",
                f"{big:.2f} ms ({big / base:.2f}x)",
                f"{base:.2f} ms with {options.small:,} published rows",
            ))
    notes = [
        f"{pending:,} pending rows at the start; {options.repetitions} claims per "
        "measurement, each batch then marked published as the relay does.",
    ]
    if options.fifo_index:
        notes.append("with the extra index bench_pending_subject_idx on "
                     "(subject, created_at) WHERE status = 'pending'.")
    record("Claim time as history grows", rows, notes, save=not options.no_record)


if __name__ == "__main__":
    main()
