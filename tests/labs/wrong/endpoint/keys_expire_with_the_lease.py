# learner: "A key only matters while a request is in flight: it expires with the lease, after 10 seconds."
# misses: later_retry
# hint: had expired
from helpers.idempotency import DynamoDBStore, Idempotency, IdempotencyConfig, handle_http

store = DynamoDBStore(wb.resources.name("idempotency"), client=wb.client("dynamodb"))
store.create_table()
config = IdempotencyConfig(scope="lab04.charges", token_header="Idempotency-Key", expires_after=10, lease_duration=10)
idem = Idempotency(config, store=store, worker="payments-api")


def make_endpoint(charge):
    def serve(method, path, headers, body):
        return handle_http(idem, method, path, headers, body, charge)

    return serve
