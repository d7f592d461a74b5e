# learner: "The library with its MemoryStore: every worker I make shares it, and there is no table to create."
# misses: crash_after
# hint: remembers nothing
import json

from helpers.idempotency import Idempotency, IdempotencyConfig, MemoryStore

store = MemoryStore()
config = IdempotencyConfig(scope="lab03.charge", token_field="key", lease_duration=3)


def make_consumer(worker):
    idem = Idempotency(config, store=store, worker=worker)

    def handle(message):
        order = json.loads(message["Body"])
        return idem.execute(order, lambda: ledger.charge(order["order_id"], order["amount"], by=worker)).value

    return handle
