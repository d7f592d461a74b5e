# learner: "A charge takes a second or two: a two-second lease frees the key soon if an instance dies mid-charge."
# misses: in_flight
# hint: lease
from helpers.idempotency import DynamoDBStore, Idempotency, IdempotencyConfig, handle_http

store = DynamoDBStore(wb.resources.name("idempotency"), client=wb.client("dynamodb"))
store.create_table()
config = IdempotencyConfig(
    scope="lab04.charges", token_header="Idempotency-Key", expires_after=24 * 3600, lease_duration=2
)
idem = Idempotency(config, store=store, worker="payments-api")


def make_endpoint(charge):
    def serve(method, path, headers, body):
        return handle_http(idem, method, path, headers, body, charge)

    return serve
