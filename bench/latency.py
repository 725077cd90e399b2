"""Commit-to-publish latency at a steady event rate: polling against NOTIFY.

A producer thread records one event per transaction at ``--rate`` events/s
and notes the time each commit returned. A relay thread with the default
poll interval publishes through a publisher that notes the time of each
publish call. The latency of an event is the difference. The same run
measures the relay polling alone (``OUTBOX["NOTIFY"] = False``, the
default) and with the LISTEN/NOTIFY fast path.
"""

from __future__ import annotations

import threading
import time

from common import median, parser, percentile, record, setup_django, truncate


class RecordingPublisher:
    """A do-nothing publisher that notes when each event was published."""

    def __init__(self):
        from outbox.publishers import NullPublisher

        self.inner = NullPublisher()
        self.published_at: dict[str, float] = {}

    def publish(self, messages):
        now = time.time()
        for message in messages:
            self.published_at.setdefault(message.event_id, now)
        return self.inner.publish(messages)

    def close(self):
        pass


def produce(rate: float, seconds: float) -> dict[str, float]:
    """Record events at a steady rate; return commit times by event id."""
    from django.db import connection, transaction

    from outbox.api import record_event

    committed = {}
    period = 1.0 / rate
    start = time.monotonic()
    for number in range(int(rate * seconds)):
        delay = start + number * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with transaction.atomic():
            event = record_event("bench.latency", {"n": number}, subject=str(number))
        committed[str(event.id)] = time.time()
    connection.close()
    return committed


def run_variant(notify: bool, rate: float, seconds: float, interval: float) -> list[float]:
    from django.conf import settings
    from django.db import connections

    from outbox.relay import Relay

    truncate("outbox_outboxevent")
    settings.OUTBOX = {**settings.OUTBOX, "NOTIFY": notify}
    publisher = RecordingPublisher()
    relay = Relay(publisher=publisher)
    stop = threading.Event()

    def relay_thread():
        try:
            relay.run(stop, interval=interval)
        finally:
            connections.close_all()

    thread = threading.Thread(target=relay_thread)
    thread.start()
    time.sleep(0.5)  # the relay's first claim and LISTEN happen before the events
    committed = produce(rate, seconds)
    time.sleep(interval * 2 + 0.5)
    stop.set()
    thread.join()
    missing = set(committed) - set(publisher.published_at)
    if missing:
        raise SystemExit(f"{len(missing)} of {len(committed)} events were not published")
    return [publisher.published_at[key] - committed[key] for key in committed]


def main():
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--rate", type=float, default=50, help="Events per second.")
    arguments.add_argument(
        "--seconds", type=float, default=20, help="Seconds of events per variant."
    )
    arguments.add_argument(
        "--interval", type=float, default=1.0,
        help="Relay poll interval in seconds (the default OUTBOX['POLL_INTERVAL']).",
    )
    options = arguments.parse_args()
    setup_django()
    import logging

    logging.getLogger("outbox.relay").setLevel(logging.WARNING)
    polling = run_variant(False, options.rate, options.seconds, options.interval)
    notify = run_variant(True, options.rate, options.seconds, options.interval)
    truncate("outbox_outboxevent")

    rows = []
    for name, fraction in (("median", 0.5), ("p99", 0.99)):
        fast, slow = percentile(notify, fraction) * 1000, percentile(polling, fraction) * 1000
        rows.append((
            f"commit to publish, {name}",
            f"{fast:.1f} ms with NOTIFY",
            f"{slow:.1f} ms polling every {options.interval:g} s",
        ))
    notes = [
        f"{options.rate:g} events/s for {options.seconds:g} s per variant, one event "
        "per transaction; relay and producer are threads of one process.",
        f"exact median: {median(notify) * 1000:.1f} ms with NOTIFY, "
        f"{median(polling) * 1000:.1f} ms polling.",
    ]
    record("Commit-to-publish latency", rows, notes, save=not options.no_record)


if __name__ == "__main__":
    main()
