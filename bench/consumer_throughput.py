"""Consumer throughput per process, messages/s from LocalStack's SQS.

The queue is filled with CloudEvents (raw delivery, as the fan-out sets up)
through ``SendMessageBatch``, then drained by one consumer process with a
handler that makes no call (bench/naive.py ``NullHandler``). The baseline
drains an equal queue one message at a time: receive one, handle it with
the same ``Consumer.process``, delete it. LocalStack is started for the run
by bench/localstack.py unless ``--endpoint`` names a running one.
"""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from common import Stopwatch, parser, record, setup_django, truncate

INTEGRATION = "bench"


def configure(endpoint: str) -> None:
    from django.conf import settings

    from integrations import fanout
    from outbox import aws

    settings.OUTBOX = {
        **settings.OUTBOX, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
        "TOPIC_NAME": f"bench-{uuid.uuid4().hex[:6]}", "TOPIC_ARN": None,
    }
    settings.INTEGRATIONS = {
        **settings.INTEGRATIONS,
        "QUEUE_PREFIX": f"bench{uuid.uuid4().hex[:6]}-",
        "HANDLERS": {INTEGRATION: {"CLASS": "naive.NullHandler"}},
    }
    aws.reset_clients()
    fanout.forget_queue_urls()
    fanout.apply(fanout.build_plan())


def fill_queue(count: int) -> None:
    """Send ``count`` CloudEvents to the integration's queue, 10 a call."""
    from integrations import fanout
    from outbox import aws

    queue_url = fanout.queue_url(INTEGRATION)
    sqs = aws.client("sqs")

    def send(start):
        entries = [
            {"Id": str(index), "MessageBody": json.dumps(_cloudevent(start + index))}
            for index in range(min(10, count - start))
        ]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if response.get("Failed"):
            raise SystemExit(f"SendMessageBatch failed: {response['Failed']}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(0, count, 10)))


def _cloudevent(number: int) -> dict:
    return {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "/bench",
        "type": "bench.consumed", "time": "2026-01-01T00:00:00Z",
        "datacontenttype": "application/json", "subject": str(number),
        "data": {"user_id": number, "email": f"user{number}@example.com"},
    }


def delivered() -> int:
    from integrations.models import Delivery

    return Delivery.objects.filter(status=Delivery.Status.DELIVERED).count()


def batch_rate(messages: int, concurrency: int | None) -> float:
    from integrations.consumer import Consumer

    truncate("integrations_delivery")
    fill_queue(messages)
    consumer = Consumer(INTEGRATION, concurrency=concurrency)
    try:
        with Stopwatch() as watch:
            consumer.run(threading.Event(), once=True)
    finally:
        consumer.close()
    _check_delivered(messages)
    return messages / watch.seconds


def naive_rate(messages: int) -> float:
    import naive
    from integrations.consumer import Consumer

    truncate("integrations_delivery")
    fill_queue(messages)
    consumer = Consumer(INTEGRATION, concurrency=1)
    try:
        with Stopwatch() as watch:
            naive.consume_one_at_a_time(consumer)
    finally:
        consumer.close()
    _check_delivered(messages)
    return messages / watch.seconds


def _check_delivered(messages: int) -> None:
    count = delivered()
    if count != messages:
        raise SystemExit(f"delivered {count} of {messages} messages")


def measure(endpoint, messages, naive_messages, concurrencies):
    configure(endpoint)
    naive = naive_rate(naive_messages)
    rows = []
    for concurrency in concurrencies:
        rate = batch_rate(messages, concurrency)
        rows.append((
            f"consumer, batches of 10, {concurrency} handler threads",
            f"{rate:,.0f} messages/s ({rate / naive:.1f}x)",
            f"one at a time {naive:,.0f} messages/s",
        ))
        print(rows[-1], flush=True)
    return rows


def main():
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--messages", type=int, default=3_000,
                           help="Messages drained per consumer configuration.")
    arguments.add_argument("--naive-messages", type=int, default=1_000,
                           help="Messages drained one at a time.")
    arguments.add_argument("--concurrency", default="10",
                           help="Comma-separated handler thread counts to measure.")
    arguments.add_argument("--endpoint", default=None,
                           help="URL of a running LocalStack (default: start one).")
    options = arguments.parse_args()
    setup_django()
    import logging

    logging.getLogger("integrations").setLevel(logging.WARNING)
    concurrencies = [int(value) for value in options.concurrency.split(",")]
    if options.endpoint:
        rows = measure(options.endpoint, options.messages, options.naive_messages,
                       concurrencies)
    else:
        from localstack import LocalStackServer

        with LocalStackServer() as server:
            rows = measure(server.endpoint_url, options.messages,
                           options.naive_messages, concurrencies)
    truncate("integrations_delivery")
    notes = [
        f"{options.messages:,} messages per configuration, {options.naive_messages:,} "
        "one at a time; LocalStack SQS on 127.0.0.1, same machine.",
    ]
    record("Consumer throughput", rows, notes, save=not options.no_record)


if __name__ == "__main__":
    main()
