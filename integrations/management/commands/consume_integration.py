import logging
import signal
import threading

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from integrations.consumer import Consumer
from outbox.management.arguments import positive_int

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Consume one integration's SQS queue and deliver events to its third party."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Integration name, a key of INTEGRATIONS['HANDLERS'].")
        parser.add_argument(
            "--once", action="store_true",
            help="Handle the messages now in the queue, then exit.",
        )
        parser.add_argument(
            "--concurrency", type=positive_int, default=None,
            help="Handler calls in flight at once (default: INTEGRATIONS['CONCURRENCY']).",
        )
        parser.add_argument(
            "--consumer-id", default=None,
            help="Name recorded on delivery leases (default: name@host:pid:random).",
        )

    def handle(self, *args, name, once, concurrency, consumer_id, **options):
        try:
            consumer = Consumer(name, consumer_id=consumer_id, concurrency=concurrency)
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from error

        stop = threading.Event()

        def request_stop(signum, frame):
            logger.info("stop requested by signal %s", signum,
                        extra={"consumer": consumer.consumer_id})
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        logger.info("consumer started", extra={"consumer": consumer.consumer_id,
                                               "integration": name})
        failures = []

        def run():
            try:
                consumer.run(stop, once=once)
            except Exception as error:  # re-raised in the main thread below
                failures.append(error)

        # The loop runs in a thread so that a stop request need not wait out
        # a long poll of up to 20 s. Leaving during a receive loses nothing:
        # messages SQS handed out meanwhile reappear after their visibility
        # timeout. A batch being handled is always finished first.
        worker = threading.Thread(target=run, name=f"consume-{name}", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.2)
                if stop.is_set() and consumer.receiving:
                    break
        finally:
            consumer.close()
            logger.info("consumer stopped", extra={"consumer": consumer.consumer_id})
        if failures:
            error = failures[0]
            if isinstance(error, ImproperlyConfigured):
                raise CommandError(str(error)) from error
            raise error
