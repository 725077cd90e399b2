"""Purge of published rows: total time, and how long locks were held.

Seeds ``--rows`` published events 30 days old (as bench/claim_growth.py
does) and runs ``outbox.purge.purge_published`` over them. Each purge batch
is one transaction that locks its rows from its first statement to its
commit, so the longest batch is the longest time any row lock was held; the
longest single statement is reported too. A probe thread meanwhile records
an event and claims it every 50 ms, and its slowest round shows whether the
purge held up writers and the relay.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

from claim_growth import TABLE, add_published_history
from common import median, parser, record, setup_django, truncate, vacuum_analyze


class StatementTimer:
    """A Django execute wrapper that keeps the longest statement's time."""

    def __init__(self):
        self.longest = 0.0
        self.longest_sql = ""

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - start
            if elapsed > self.longest:
                self.longest, self.longest_sql = elapsed, sql[:80]


def probe(stop: threading.Event, rounds: list[float]) -> None:
    """Record one pending event and claim it, every 50 ms, until ``stop``."""
    from django.db import connection, connections, transaction
    from django.utils import timezone

    from outbox import store
    from outbox.api import record_event

    try:
        while not stop.wait(0.05):
            start = time.perf_counter()
            with transaction.atomic():
                record_event("bench.probe", {})
            now = timezone.now()
            store.claim_postgresql(
                connection, "probe", uuid.uuid4(), now, now + timedelta(seconds=600),
                10, False,
            )
            rounds.append(time.perf_counter() - start)
    finally:
        connections.close_all()


def run_purge(batch_size: int):
    from django.db import connection

    from outbox.purge import purge_published

    batch_ends = [time.perf_counter()]
    timer = StatementTimer()
    stop, rounds = threading.Event(), []
    thread = threading.Thread(target=probe, args=(stop, rounds))
    thread.start()
    try:
        with connection.execute_wrapper(timer):
            result = purge_published(
                timedelta(days=1), batch_size=batch_size,
                progress=lambda _: batch_ends.append(time.perf_counter()),
            )
    finally:
        stop.set()
        thread.join()
    batches = [end - start for start, end in zip(batch_ends, batch_ends[1:])]
    return result, batch_ends[-1] - batch_ends[0], batches, timer, rounds


def main():
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--rows", type=int, default=200_000,
                           help="Published rows to purge (1000000 for the full figure).")
    arguments.add_argument("--batch-size", type=int, default=1000,
                           help="purge_published batch size.")
    options = arguments.parse_args()
    setup_django()
    import logging

    logging.getLogger("outbox").setLevel(logging.WARNING)
    truncate(TABLE)
    add_published_history(0, options.rows)
    vacuum_analyze(TABLE)
    result, total, batches, timer, rounds = run_purge(options.batch_size)
    truncate(TABLE)
    if result.events != options.rows:
        raise SystemExit(f"purged {result.events} of {options.rows} rows")

    rows = [
        (f"purge of {options.rows:,} published rows, total",
         f"{total:.1f} s ({options.rows / total:,.0f} rows/s)", "none (no baseline)"),
        (f"longest batch transaction (row locks held), {options.batch_size} rows",
         f"{max(batches) * 1000:.0f} ms", f"median batch {median(batches) * 1000:.0f} ms"),
        ("longest single statement", f"{timer.longest * 1000:.0f} ms",
         f"`{timer.longest_sql.strip()}...`"),
        ("probe: record one event and claim it, slowest round during the purge",
         f"{max(rounds) * 1000:.0f} ms", f"median round {median(rounds) * 1000:.1f} ms"),
    ]
    notes = [f"{result.batches} batches; no deliveries, attempts or payloads to delete."]
    record("Purge of published rows", rows, notes, save=not options.no_record)


if __name__ == "__main__":
    main()
