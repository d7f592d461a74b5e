# learner: "I keep the keys I have seen in a set at module level, so every worker I make shares it."
# misses: crash_after, concurrent
# hint: remembers nothing
import json

seen = set()


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        if order["key"] in seen:
            return
        ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])
        seen.add(order["key"])

    return handle
