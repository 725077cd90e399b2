"""The shop's own integration: tell the warehouse about every placed order."""

from integrations.base import Handler, HttpRequest


class WarehouseHandler(Handler):
    event_types = ("order.placed",)
    required_options = ("URL",)

    def build_request(self, event):
        return HttpRequest(
            method="POST",
            url=self.options["URL"],
            json={
                "order_id": event.subject,
                "sku": event.data["sku"],
                "quantity": event.data["quantity"],
            },
            headers={"Idempotency-Key": event.id},
        )
