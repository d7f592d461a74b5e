# learner: "The library's one-transaction form, and a duplicate that finds the key taken waits for its result."
import json

from helpers.idempotency import DynamoDBStore, Effect, Idempotency, IdempotencyConfig, WaitPolicy

store = DynamoDBStore(wb.resources.name("records"), client=wb.client("dynamodb"))
store.create_table()
config = IdempotencyConfig(scope="orders.charge", token_field="key", lease_duration=2, wait=WaitPolicy(max_wait=2))


def make_consumer(worker):
    idem = Idempotency(config, store=store, worker=worker)

    def handle(message):
        order = json.loads(message["Body"])
        effect = Effect(
            result={"charged": order["amount"]},
            writes=[ledger.put_item_request(order["order_id"], order["amount"], by=worker, key=order["key"])],
        )
        return idem.execute_transactional(order, effect).value

    return handle
