"""Signals sent by the consumers.

``delivery_succeeded``: a handler delivered an event. Arguments: ``sender``
(the ``Delivery`` class) and ``delivery``.

``delivery_failed``: an event was dead-lettered for an integration.
Arguments: ``sender``, ``delivery`` and ``reason`` (text).
"""

from django.dispatch import Signal

delivery_succeeded = Signal()
delivery_failed = Signal()
