# learner: "The library raises InProgress when another worker has the key: so it is a duplicate, and I return."
# misses: crash_before, ack_after_charge
# hint: must raise
import json

from helpers.idempotency import DynamoDBStore, Idempotency, IdempotencyConfig, InProgress

store = DynamoDBStore(wb.resources.name("idempotency"), client=wb.client("dynamodb"))
store.create_table()
config = IdempotencyConfig(scope="lab03.charge", token_field="key", lease_duration=3)


def make_consumer(worker):
    idem = Idempotency(config, store=store, worker=worker)

    def handle(message):
        order = json.loads(message["Body"])
        try:
            idem.execute(order, lambda: ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"]))
        except InProgress:
            return None

    return handle
