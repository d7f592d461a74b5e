# learner: "Each worker remembers the keys it handled in a set of its own."
# misses: crash_after, sent_again
# hint: remembers nothing
import json


def make_consumer(worker):
    seen = set()

    def handle(message):
        order = json.loads(message["Body"])
        if order["key"] in seen:
            return
        seen.add(order["key"])
        ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])

    return handle
