"""Publishers send encoded messages to the broker and report each outcome.

A publisher never raises for one message's fault. It returns one
``PublishResult`` per message, and marks the results of calls that failed
because the broker as a whole was unreachable or throttling with
``outage=True``, so the relay can pause without charging those events an
attempt.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectTimeoutError
from django.utils.module_loading import import_string

from outbox import aws, claimcheck, conf
from outbox.messages import OutgoingMessage

logger = logging.getLogger(__name__)

SNS_MAX_BATCH_ENTRIES = 10

# Error codes that describe the service or our configuration, not a message.
OUTAGE_ERROR_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "KMSThrottlingException",
    "NotFound",
    "AuthorizationError",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "SignatureDoesNotMatch",
}


@dataclass
class PublishResult:
    event_id: str
    message_id: str = ""
    error: str = ""
    outage: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.message_id)


class Publisher:
    """Interface of a publisher. Subclasses implement ``publish``."""

    def publish(self, messages: list[OutgoingMessage]) -> list[PublishResult]:
        raise NotImplementedError

    def close(self) -> None:
        """Release threads or connections."""


class NullPublisher(Publisher):
    """Publish nowhere. Measures the relay's database side in benchmarks."""

    def publish(self, messages):
        return [PublishResult(m.event_id, message_id=f"null-{m.event_id}") for m in messages]


class SNSPublisher(Publisher):
    """Publish with SNS ``PublishBatch``, several calls in flight at once."""

    def __init__(self):
        self.topic_arn = aws.topic_arn()
        self.fifo = self.topic_arn.endswith(".fifo")
        self.max_batch_bytes = int(conf.get_positive_number("MAX_MESSAGE_BYTES"))
        self.executor = ThreadPoolExecutor(
            max_workers=int(conf.get_positive_number("PUBLISH_CONCURRENCY")),
            thread_name_prefix="outbox-publish",
        )

    def close(self):
        self.executor.shutdown(wait=True)

    def publish(self, messages):
        results: list[PublishResult] = []
        ready = []
        for message in messages:
            failure = self._store_payload(message)
            if failure:
                results.append(failure)
            else:
                ready.append(message)
        batches = list(pack_batches(ready, self.max_batch_bytes))
        if len(batches) == 1:
            results.extend(self._publish_batch(batches[0]))
            return results
        for batch_results in self.executor.map(self._publish_batch, batches):
            results.extend(batch_results)
        return results

    def _store_payload(self, message: OutgoingMessage) -> PublishResult | None:
        if message.payload is None:
            return None
        try:
            claimcheck.store_payload(message.payload_key, message.payload)
        except Exception as error:  # storage backends raise many types
            logger.warning(
                "claim-check store failed",
                extra={"event_id": message.event_id, "payload_key": message.payload_key},
                exc_info=True,
            )
            # Storage being down is not the event's fault, so like an SNS
            # outage it pauses the relay without charging an attempt.
            return PublishResult(
                message.event_id,
                error=f"claim-check store of {message.payload_key!r} failed: {error!r}",
                outage=True,
            )
        return None

    def _entry(self, index: int, message: OutgoingMessage) -> dict:
        entry = {
            "Id": f"m{index}",
            "Message": message.body,
            "MessageAttributes": message.attributes,
        }
        if self.fifo:
            entry["MessageGroupId"] = (message.subject or "default")[:128]
            entry["MessageDeduplicationId"] = message.event_id
        return entry

    def _publish_batch(self, batch: list[OutgoingMessage]) -> list[PublishResult]:
        entries = [self._entry(index, message) for index, message in enumerate(batch)]
        try:
            response = aws.client("sns").publish_batch(
                TopicArn=self.topic_arn, PublishBatchRequestEntries=entries
            )
        except (
            EndpointConnectionError,
            ConnectTimeoutError,
            ReadTimeoutError,
            ConnectionClosedError,
        ) as error:
            return _fail_all(batch, f"SNS unreachable: {error}", outage=True)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            outage = code in OUTAGE_ERROR_CODES or status >= 500
            if not outage and len(batch) > 1:
                # A whole call can be rejected for one invalid entry (moto 5.2
                # does so for a bad attribute, LocalStack never fails single
                # entries). One call per entry charges only the invalid one.
                return [result for m in batch for result in self._publish_batch([m])]
            return _fail_all(batch, f"SNS PublishBatch failed: {error}", outage=outage)
        except ParamValidationError as error:
            # botocore rejected the request before sending it: the entries
            # are at fault, not SNS.
            return _fail_all(batch, f"SNS request invalid: {error}", outage=False)
        except BotoCoreError as error:
            return _fail_all(batch, f"SNS client error: {error}", outage=True)
        return _read_batch_response(batch, response)


def _fail_all(batch, error: str, outage: bool) -> list[PublishResult]:
    return [PublishResult(m.event_id, error=error, outage=outage) for m in batch]


def _read_batch_response(batch, response) -> list[PublishResult]:
    """Map each entry of a 200 response to its own result."""
    results = {}
    for item in response.get("Successful", []):
        index = int(item["Id"][1:])
        results[index] = PublishResult(batch[index].event_id, message_id=item["MessageId"])
    for item in response.get("Failed", []):
        index = int(item["Id"][1:])
        error = f"{item.get('Code', 'Error')}: {item.get('Message', '')}".strip()
        # SenderFault false means SNS failed this entry itself: retry it
        # without counting the attempt, as in an outage.
        outage = not item.get("SenderFault", True)
        results[index] = PublishResult(batch[index].event_id, error=error, outage=outage)
    for index, message in enumerate(batch):
        if index not in results:
            results[index] = PublishResult(
                message.event_id, error="PublishBatch returned no result for the entry"
            )
    return [results[index] for index in range(len(batch))]


def pack_batches(messages, max_batch_bytes: int):
    """Yield batches of at most 10 messages and ``max_batch_bytes`` in total.

    SNS rejects a whole ``PublishBatch`` call whose entries add up to more
    than the message size limit, not only single large entries.
    """
    batch: list[OutgoingMessage] = []
    batch_bytes = 0
    for message in messages:
        size = message.size
        full = len(batch) == SNS_MAX_BATCH_ENTRIES or batch_bytes + size > max_batch_bytes
        if batch and full:
            yield batch
            batch, batch_bytes = [], 0
        batch.append(message)
        batch_bytes += size
    if batch:
        yield batch


def get_publisher() -> Publisher:
    path = conf.get("PUBLISHER")
    try:
        publisher_class = import_string(path)
    except ImportError as error:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"OUTBOX['PUBLISHER'] = {path!r} cannot be imported: {error}; use "
            "'outbox.publishers.SNSPublisher' or a Publisher subclass's dotted path"
        ) from error
    return publisher_class()
