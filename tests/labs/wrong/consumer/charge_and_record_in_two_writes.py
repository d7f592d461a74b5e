# learner: "idem.execute claims the key, runs the charge, then marks the key done: the library handles crashes."
# misses: crash_after
# hint: two writes
import json

from helpers.idempotency import DynamoDBStore, Idempotency, IdempotencyConfig

store = DynamoDBStore(wb.resources.name("idempotency"), client=wb.client("dynamodb"))
store.create_table()
config = IdempotencyConfig(scope="lab03.charge", token_field="key", lease_duration=2)


def make_consumer(worker):
    idem = Idempotency(config, store=store, worker=worker)

    def handle(message):
        order = json.loads(message["Body"])
        charge = lambda: ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])
        return idem.execute(order, charge).value

    return handle
