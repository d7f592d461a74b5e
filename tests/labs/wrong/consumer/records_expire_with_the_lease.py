# learner: "A record only has to live as long as the message is in flight: expires_after=5, like the lease."
# misses: sent_again
# hint: had expired
from helpers.idempotency import DynamoDBStore, Effect, Idempotency, IdempotencyConfig

store = DynamoDBStore(wb.resources.name("idempotency"), client=wb.client("dynamodb"))
store.create_table()
config = IdempotencyConfig(scope="lab03.charge", token_field="key", lease_duration=5, expires_after=5)


def make_consumer(worker):
    idem = Idempotency(config, store=store, worker=worker)

    def handle(message):
        order = json.loads(message["Body"])

        def effect(ctx):
            charge = ledger.put_item_request(order["order_id"], order["amount"], by=worker, key=order["key"])
            return Effect(result={"order_id": order["order_id"], "charged": order["amount"]}, writes=[charge])

        return idem.execute_transactional(order, effect).value

    return handle
