"""Signals that let projects hook into the outbox.

``event_recorded``: sent inside the producer's transaction after an event row
was written. Arguments: ``sender`` (the ``OutboxEvent`` class) and ``event``.

``events_published``: sent by the relay after a batch was published and
recorded. Arguments: ``sender`` (the ``OutboxEvent`` class), ``event_ids``
(list of UUID) and ``relay`` (the relay's id).

``event_failed``: sent by the relay when an event used up its attempts and
became ``failed``. Arguments: ``sender``, ``event_id`` and ``error``.
"""

from django.dispatch import Signal

event_recorded = Signal()
events_published = Signal()
event_failed = Signal()
