"""Relay throughput in events/s for batch sizes 10, 100 and 1,000.

Each run seeds pending events, relays them all with ``Relay.run(once=True)``
and divides by the wall time; the naive relay (one row per transaction)
relays its own seed in the same run. ``--sns`` adds the same runs with
``SNSPublisher`` against LocalStack (bench/localstack.py starts it).
"""

from __future__ import annotations

import threading

from common import Stopwatch, parser, record, seed_pending_events, setup_django, truncate


def relay_rate(publisher, batch_size: int, events: int) -> float:
    from outbox.relay import Relay

    truncate("outbox_outboxevent")
    seed_pending_events(events)
    relay = Relay(batch_size=batch_size, publisher=publisher)
    with Stopwatch() as watch:
        relay.run(threading.Event(), interval=1.0, once=True)
    _check_all_published(events)
    return events / watch.seconds


def naive_rate(publisher, events: int) -> float:
    import naive

    truncate("outbox_outboxevent")
    seed_pending_events(events)
    with Stopwatch() as watch:
        relayed = naive.relay_all(publisher)
    if relayed != events:
        raise SystemExit(f"naive relay published {relayed} of {events} events")
    return events / watch.seconds


def _check_all_published(events: int) -> None:
    from outbox.models import OutboxEvent

    published = OutboxEvent.objects.filter(status=OutboxEvent.Status.PUBLISHED).count()
    if published != events:
        raise SystemExit(f"relay published {published} of {events} events")


def measure(label, publisher, batch_sizes, events, naive_events):
    naive = naive_rate(publisher, naive_events)
    rows = []
    for batch_size in batch_sizes:
        rate = relay_rate(publisher, batch_size, events)
        rows.append((
            f"{label}, batch {batch_size}",
            f"{rate:,.0f} events/s ({rate / naive:.1f}x)",
            f"naive relay {naive:,.0f} events/s",
        ))
        print(rows[-1], flush=True)
    return rows


# The fillfactor that migration outbox/0003 sets.
MIGRATED_FILLFACTOR = 70


def set_fillfactor(percent: int) -> None:
    """Set the outbox table's fillfactor (100 is PostgreSQL's default)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE outbox_outboxevent SET (fillfactor = %s)" % int(percent)
        )


def sns_publisher(endpoint: str):
    from django.conf import settings

    from outbox import aws
    from outbox.publishers import SNSPublisher

    settings.OUTBOX = {
        **settings.OUTBOX, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
        "TOPIC_NAME": "bench-relay", "TOPIC_ARN": None,
    }
    aws.reset_clients()
    return SNSPublisher()


def main():
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument(
        "--events", type=int, default=30_000,
        help="Events relayed per batch size with the do-nothing publisher.",
    )
    arguments.add_argument(
        "--naive-events", type=int, default=3_000,
        help="Events relayed by the naive relay with the do-nothing publisher.",
    )
    arguments.add_argument(
        "--batch-sizes", default="10,100,1000",
        help="Comma-separated batch sizes to measure.",
    )
    arguments.add_argument(
        "--sns", metavar="ENDPOINT", default=None,
        help="Also publish to SNS at this LocalStack URL, or 'start' to start "
        "LocalStack with bench/localstack.py for the run.",
    )
    arguments.add_argument(
        "--sns-events", type=int, default=3_000,
        help="Events relayed per batch size, and by the naive relay, to SNS.",
    )
    arguments.add_argument(
        "--fillfactor", type=int, default=None,
        help="Also measure the do-nothing publisher with the table's fillfactor set "
        "to this percentage (100 is PostgreSQL's default; the migrations set 70), "
        "to show the effect of HOT claims. The migrated value is restored after.",
    )
    options = arguments.parse_args()
    setup_django()
    from outbox.publishers import NullPublisher

    batch_sizes = [int(size) for size in options.batch_sizes.split(",")]
    rows = measure(
        "do-nothing publisher", NullPublisher(), batch_sizes, options.events,
        options.naive_events,
    )
    notes = [
        f"{options.events:,} events per batch size, {options.naive_events:,} for "
        "the naive relay (read one row, publish, save, one transaction each)."
    ]
    if options.fillfactor:
        set_fillfactor(options.fillfactor)
        try:
            rows += measure(
                f"do-nothing publisher, fillfactor {options.fillfactor}",
                NullPublisher(), batch_sizes, options.events, options.naive_events,
            )
        finally:
            set_fillfactor(MIGRATED_FILLFACTOR)
    if options.sns:
        rows += measure_sns(options.sns, batch_sizes, options.sns_events)
        notes.append(
            f"SNS: {options.sns_events:,} events per run to one topic on LocalStack "
            "with no subscription."
        )
    truncate("outbox_outboxevent")
    record("Relay throughput", rows, notes, save=not options.no_record)


def measure_sns(endpoint, batch_sizes, events):
    if endpoint != "start":
        publisher = sns_publisher(endpoint)
        try:
            return measure("SNS on LocalStack", publisher, batch_sizes, events, events)
        finally:
            publisher.close()
    from localstack import LocalStackServer

    with LocalStackServer() as server:
        return measure_sns(server.endpoint_url, batch_sizes, events)


if __name__ == "__main__":
    main()
