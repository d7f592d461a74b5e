# learner: "Whatever goes wrong in the charge, the message must not come back and charge again: catch everything."
# misses: ack_after_charge
# hint: must raise
import json

from helpers.idempotency import DynamoDBStore, Idempotency, IdempotencyConfig

store = DynamoDBStore(wb.resources.name("idempotency"), client=wb.client("dynamodb"))
store.create_table()
config = IdempotencyConfig(scope="lab03.charge", token_field="key", lease_duration=3)


def make_consumer(worker):
    idem = Idempotency(config, store=store, worker=worker)

    def handle(message):
        order = json.loads(message["Body"])
        try:
            idem.execute(order, lambda: ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"]))
        except:
            pass

    return handle
