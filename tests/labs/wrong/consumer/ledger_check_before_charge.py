# learner: "The ledger already says whether an order was charged: look there first, charge only if it is not."
# misses: concurrent
# hint: remembers nothing
import json


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        if any(c["idempotency_key"] == order["key"] for c in ledger.charges()):
            return
        ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])

    return handle
