import logging
import signal
import threading

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from outbox import conf
from outbox.management.arguments import non_negative_float, positive_int
from outbox.relay import Relay

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Publish pending outbox events to the SNS topic."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true",
            help="Relay until no event is claimable, then exit.",
        )
        parser.add_argument(
            "--batch-size", type=positive_int, default=None,
            help="Events claimed per batch (default: OUTBOX['BATCH_SIZE']).",
        )
        parser.add_argument(
            "--interval", type=non_negative_float, default=None,
            help="Seconds to wait between polls when idle "
            "(default: OUTBOX['POLL_INTERVAL']).",
        )
        parser.add_argument(
            "--relay-id", default=None,
            help="Name recorded on claimed rows (default: host:pid:random).",
        )

    def handle(self, *args, once, batch_size, interval, relay_id, **options):
        try:
            if interval is None:
                interval = conf.get_positive_number("POLL_INTERVAL")
            relay = Relay(batch_size=batch_size, relay_id=relay_id)
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from error

        stop = threading.Event()

        def request_stop(signum, frame):
            logger.info("stop requested by signal %s", signum, extra={"relay": relay.relay_id})
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

        logger.info(
            "relay started", extra={"relay": relay.relay_id, "batch_size": relay.batch_size}
        )
        try:
            relay.run(stop, interval=interval, once=once)
        finally:
            relay.close()
            logger.info("relay stopped", extra={"relay": relay.relay_id})
