# learner: "Every SQS message has a unique MessageId: that is the idempotency key."
# misses: sent_again, concurrent
# hint: MessageId
import json

from helpers.idempotency import DynamoDBStore, Effect, Idempotency, IdempotencyConfig

store = DynamoDBStore(wb.resources.name("idempotency"), client=wb.client("dynamodb"))
store.create_table()
config = IdempotencyConfig(scope="lab03.charge", token_field="key", lease_duration=3)


def make_consumer(worker):
    idem = Idempotency(config, store=store, worker=worker)

    def handle(message):
        order = json.loads(message["Body"])

        def effect(ctx):
            charge = ledger.put_item_request(order["order_id"], order["amount"], by=worker, key=order["key"])
            return Effect(result={"order_id": order["order_id"]}, writes=[charge])

        return idem.execute_transactional({**order, "key": message["MessageId"]}, effect).value

    return handle
