"""Record ``order.placed`` in the same transaction that saves a new order."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from outbox.api import record_event
from shop.models import Order


@receiver(post_save, sender=Order, dispatch_uid="shop.order_placed")
def order_placed(sender, instance, created, **kwargs):
    if created:
        record_event(
            "order.placed",
            {"sku": instance.sku, "quantity": instance.quantity},
            subject=instance.pk,
        )
