"""The queue consumer: receive, decode, deliver once, delete or dead-letter.

A message is deleted only after its outcome is recorded: delivered, a
duplicate of a delivered event, or copied to the dead-letter queue. On any
other path (a transient failure, a database error, a crash) the message stays
in the queue and comes back after its visibility timeout, and SQS's redrive
policy moves it to the dead-letter queue after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection

from integrations import conf, fanout, inbox, registry, signals
from integrations.exceptions import PermanentDeliveryError, TransientDeliveryError
from integrations.models import Delivery
from outbox import aws, claimcheck
from outbox import conf as outbox_conf
from outbox.exceptions import InvalidMessageError
from outbox.messages import to_received_event, unwrap_body, validate_cloudevent
from outbox.threads import shutdown_closing_connections
from outbox.tracing import restored_context

logger = logging.getLogger(__name__)

DEAD_LETTER_REASON_ATTRIBUTE = "dead_letter_reason"
MAX_VISIBILITY_TIMEOUT = 43_200  # seconds, the SQS maximum
BUSY_RETRY_SECONDS = 30


@dataclass
class Outcome:
    action: str  # "delivered", "duplicate", "retry", "busy", "dead_lettered", "kept"
    delete: bool


class VisibilityHeartbeat:
    """Extend the visibility of in-flight messages while handlers run."""

    def __init__(self, consumer: "Consumer"):
        self.consumer = consumer
        self.in_flight: dict[str, tuple[str, int | None]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.interval = max(1.0, consumer.visibility_timeout / 3)
        self.thread = threading.Thread(target=self._run, name="visibility-heartbeat", daemon=True)

    def start(self):
        self.thread.start()

    def add(self, message_id: str, receipt_handle: str):
        with self.lock:
            self.in_flight[message_id] = (receipt_handle, None)

    def set_delivery(self, message_id: str, delivery_id: int):
        with self.lock:
            if message_id in self.in_flight:
                self.in_flight[message_id] = (self.in_flight[message_id][0], delivery_id)

    def remove(self, message_id: str):
        with self.lock:
            self.in_flight.pop(message_id, None)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)

    def _run(self):
        while not self.stop.wait(self.interval):
            with self.lock:
                items = list(self.in_flight.items())
            if items:
                self._extend(items)

    def _extend(self, items):
        consumer = self.consumer
        for start in range(0, len(items), 10):
            chunk = items[start : start + 10]
            entries = [
                {
                    "Id": str(index),
                    "ReceiptHandle": receipt,
                    "VisibilityTimeout": consumer.visibility_timeout,
                }
                for index, (_, (receipt, _)) in enumerate(chunk)
            ]
            try:
                aws.client("sqs").change_message_visibility_batch(
                    QueueUrl=consumer.queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError):
                logger.warning("visibility extension failed", exc_info=True,
                               extra={"integration": consumer.name})
        delivery_ids = [delivery for _, (_, delivery) in items if delivery]
        if delivery_ids:
            try:
                inbox.extend_leases(delivery_ids, consumer.consumer_id, consumer.visibility_timeout)
            except DatabaseError:
                logger.warning("delivery lease extension failed", exc_info=True,
                               extra={"integration": consumer.name})
            finally:
                connection.close()


class Consumer:
    """Consumes one integration's queue."""

    def __init__(
        self,
        name: str,
        consumer_id: str | None = None,
        concurrency: int | None = None,
    ):
        self.name = name
        self.receiving = False  # True while waiting in receive_message
        self.handler = registry.create_handler(name)
        self.consumer_id = consumer_id or (
            f"{name}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self.queue_url = fanout.queue_url(name)
        self.dlq_url = fanout.queue_url(name, dead_letter=True)
        self.fifo = self.queue_url.endswith(".fifo")
        self._read_queue_attributes()
        self.concurrency = int(concurrency or conf.get_int("CONCURRENCY"))
        self.executor = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"consume-{name}"
        )
        self.heartbeat = VisibilityHeartbeat(self)
        self.heartbeat.start()

    def _read_queue_attributes(self):
        response = aws.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
        )
        attributes = response["Attributes"]
        self.visibility_timeout = int(attributes.get("VisibilityTimeout", 30))
        redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
        self.max_receive_count = int(
            redrive.get("maxReceiveCount") or conf.queue_setting(self.name, "MAX_RECEIVE_COUNT")
        )

    def close(self):
        self.heartbeat.close()
        shutdown_closing_connections(self.executor, self.concurrency)
        self.handler.close()

    # Receiving ------------------------------------------------------------

    def poll(self, wait_seconds: int) -> int:
        """Receive one batch, handle it and delete what is done; return its size."""
        self.receiving = True
        try:
            response = aws.client("sqs").receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait_seconds,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
            )
        finally:
            self.receiving = False
        messages = response.get("Messages", [])
        if not messages:
            return 0
        if self.fifo:
            # Messages of one group arrive in order; handling them one by one
            # keeps that order at the third party.
            outcomes = [self.process(message) for message in messages]
        else:
            outcomes = list(self.executor.map(self.process, messages))
        self._delete([m for m, o in zip(messages, outcomes) if o.delete])
        return len(messages)

    def _delete(self, messages):
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(chunk)
            ]
            try:
                response = aws.client("sqs").delete_message_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError):
                # The messages come back and are then skipped as duplicates.
                logger.warning("delete failed", exc_info=True, extra={"integration": self.name})
                continue
            for failure in response.get("Failed", []):
                logger.warning(
                    "delete of one message failed: %s", failure.get("Message"),
                    extra={"integration": self.name,
                           "sqs_message_id": chunk[int(failure["Id"])]["MessageId"]},
                )

    # Handling one message -------------------------------------------------

    def process(self, message: dict) -> Outcome:
        message_id = message["MessageId"]
        self.heartbeat.add(message_id, message["ReceiptHandle"])
        try:
            return self._process(message)
        except ImproperlyConfigured:
            raise
        except DatabaseError:
            logger.exception(
                "database error, message kept for a later receive",
                extra={"integration": self.name, "sqs_message_id": message_id},
            )
            connection.close()
            return Outcome("kept", delete=False)
        except Exception:
            logger.exception(
                "unexpected error, message kept for a later receive",
                extra={"integration": self.name, "sqs_message_id": message_id},
            )
            return Outcome("kept", delete=False)
        finally:
            self.heartbeat.remove(message_id)

    def _process(self, message: dict) -> Outcome:
        message_id = message["MessageId"]
        try:
            event = self.decode(message)
        except InvalidMessageError as error:
            return self._reject(message, None, str(error))

        event_id = inbox.parse_event_id(event.id)
        if event_id is None:
            return self._reject(message, None, f"event id {event.id!r} is not a UUID")
        if event.type not in self.handler.event_types:
            return self._reject(
                message, event,
                f"event type {event.type!r} is not handled by integration {self.name!r}",
            )

        decision, delivery = inbox.begin(
            event_id, event.type, self.name, self.consumer_id,
            self.visibility_timeout, message_id,
        )
        extra = {"integration": self.name, "event_id": event.id, "sqs_message_id": message_id}
        if decision is inbox.Decision.DUPLICATE:
            logger.info("duplicate of a delivered event skipped", extra=extra)
            return Outcome("duplicate", delete=True)
        if decision is inbox.Decision.BUSY:
            logger.info("another consumer is delivering this event", extra=extra)
            self._change_visibility(message, BUSY_RETRY_SECONDS)
            return Outcome("busy", delete=False)
        if decision is inbox.Decision.RESUME and not self.handler.idempotent:
            reason = (
                "an earlier attempt ended without a recorded outcome and "
                f"integration {self.name!r} has no idempotency key, so the call is "
                "not repeated. The earlier call may have reached the third party: "
                "check there first, and redrive only if it did not"
            )
            return self._dead_letter_delivery(message, delivery, reason, None, extra)

        self.heartbeat.set_delivery(message_id, delivery.pk)
        return self._deliver(message, event, delivery, extra)

    def _deliver(self, message, event, delivery, extra) -> Outcome:
        try:
            with restored_context(event.traceparent, f"deliver {self.name}"):
                result = self.handler.deliver(event)
        except TransientDeliveryError as error:
            return self._retry_or_give_up(message, event, delivery, error, extra)
        except PermanentDeliveryError as error:
            return self._dead_letter_delivery(message, delivery, str(error), error.status, extra)
        except ImproperlyConfigured as error:
            # Retrying cannot fix configuration: record it, keep the message
            # for after the fix, and stop this consumer.
            inbox.finish(delivery, self.consumer_id, Delivery.Status.RETRYING, error=str(error))
            raise
        except Exception as error:
            # A handler bug: retried like a transient failure, so it reaches
            # the dead-letter queue after maxReceiveCount receives.
            logger.exception("handler raised", extra=extra)
            transient = TransientDeliveryError(
                f"handler raised {type(error).__name__}: {error}",
                integration=self.name, event_id=event.id,
            )
            return self._retry_or_give_up(message, event, delivery, transient, extra)

        inbox.finish(delivery, self.consumer_id, Delivery.Status.DELIVERED,
                     response_status=result.status)
        response_status = result.status if result.status is not None else "console"
        logger.info("delivered", extra={**extra, "status": response_status})
        signals.delivery_succeeded.send(sender=Delivery, delivery=delivery)
        return Outcome("delivered", delete=True)

    def _retry_or_give_up(self, message, event, delivery, error, extra) -> Outcome:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        if receives >= self.max_receive_count:
            reason = f"gave up after {receives} receives: {error}"
            return self._dead_letter_delivery(message, delivery, reason, error.status, extra)

        delay = error.retry_after
        if delay is None:
            base = conf.get_int("RETRY_BACKOFF_BASE")
            ceiling = conf.get_int("RETRY_BACKOFF_MAX")
            delay = min(ceiling, base * 2 ** (receives - 1))
            delay = delay / 2 + random.uniform(0, delay / 2)
        delay = int(min(MAX_VISIBILITY_TIMEOUT, max(0, delay)))
        inbox.finish(delivery, self.consumer_id, Delivery.Status.RETRYING,
                     error=str(error), response_status=error.status)
        self._change_visibility(message, delay)
        logger.warning(
            "delivery failed, retrying in %s s: %s", delay, error,
            extra={**extra, "receives": receives},
        )
        return Outcome("retry", delete=False)

    def _dead_letter_delivery(self, message, delivery, reason, status, extra) -> Outcome:
        self.dead_letter(message, reason)
        inbox.finish(delivery, self.consumer_id, Delivery.Status.DEAD_LETTERED,
                     error=reason, response_status=status)
        logger.error("delivery dead-lettered: %s", reason, extra=extra)
        signals.delivery_failed.send(sender=Delivery, delivery=delivery, reason=reason)
        return Outcome("dead_lettered", delete=True)

    def _reject(self, message, event, reason: str) -> Outcome:
        """Dead-letter a message that no handler call can fix."""
        self.dead_letter(message, reason)
        extra = {"integration": self.name, "sqs_message_id": message["MessageId"]}
        event_id = inbox.parse_event_id(event.id) if event else None
        if event_id is not None:
            extra["event_id"] = str(event_id)
            delivery = inbox.record_rejected(event_id, event.type, self.name, reason)
            signals.delivery_failed.send(sender=Delivery, delivery=delivery, reason=reason)
        logger.error("invalid message dead-lettered: %s", reason, extra=extra)
        return Outcome("dead_lettered", delete=True)

    def decode(self, message: dict):
        """Return the message's CloudEvent with claim-checked data resolved."""
        document, _ = unwrap_body(message.get("Body", ""), message.get("MessageAttributes"))
        validate_cloudevent(document)
        if "dataref" in document:
            key = document["dataref"]
            if not claimcheck.is_payload_key(key):
                raise InvalidMessageError(
                    f"dataref {key!r} is not a key under the claim-check prefix "
                    f"{outbox_conf.get('CLAIM_CHECK_PREFIX')!r}"
                )
            data = claimcheck.load_payload(key)
        else:
            data = document.get("data")
        return to_received_event(document, data)

    # SQS helpers ------------------------------------------------------------

    def dead_letter(self, message: dict, reason: str) -> None:
        """Copy the message to the dead-letter queue with the reason attached."""
        attributes = {
            name: value
            for name, value in (message.get("MessageAttributes") or {}).items()
            if value.get("DataType", "").split(".")[0] in ("String", "Number")
            and name != DEAD_LETTER_REASON_ATTRIBUTE
        }
        attributes = dict(list(attributes.items())[:9])
        attributes[DEAD_LETTER_REASON_ATTRIBUTE] = {
            "DataType": "String",
            "StringValue": reason[:1000] or "unknown",
        }
        request = {
            "QueueUrl": self.dlq_url,
            "MessageBody": message.get("Body") or "(empty body)",
            "MessageAttributes": attributes,
        }
        if self.fifo:
            request["MessageGroupId"] = message.get("Attributes", {}).get(
                "MessageGroupId", "dead-letter"
            )
            request["MessageDeduplicationId"] = message["MessageId"]
        aws.client("sqs").send_message(**request)

    def _change_visibility(self, message: dict, seconds: int) -> None:
        try:
            aws.client("sqs").change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=seconds,
            )
        except (BotoCoreError, ClientError):
            logger.warning("visibility change failed", exc_info=True,
                           extra={"integration": self.name,
                                  "sqs_message_id": message["MessageId"]})

    # Loop -------------------------------------------------------------------

    def run(self, stop: threading.Event, once: bool = False) -> None:
        """Poll until ``stop`` is set; with ``once``, until the queue is empty."""
        # A short wait even with --once, because short polling may sample only
        # some SQS servers and return nothing while messages remain.
        wait_seconds = 1 if once else conf.get_int("WAIT_TIME_SECONDS")
        while not stop.is_set():
            try:
                received = self.poll(wait_seconds)
            except (BotoCoreError, ClientError):
                logger.exception("receive failed", extra={"integration": self.name})
                if once:
                    raise
                stop.wait(5)
                continue
            if once and received == 0:
                return
