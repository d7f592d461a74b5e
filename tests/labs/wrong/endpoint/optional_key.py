# learner: "A request without a key is simply not protected: charge it, clients that care send a key."
# misses: missing_key
# hint: 400
from helpers.idempotency import DynamoDBStore, Idempotency, IdempotencyConfig, handle_http

store = DynamoDBStore(wb.resources.name("idempotency"), client=wb.client("dynamodb"))
store.create_table()
idem = Idempotency(IdempotencyConfig(scope="lab04.charges", token_header="Idempotency-Key"), store=store)


def make_endpoint(charge):
    def serve(method, path, headers, body):
        return handle_http(idem, method, path, headers, body, charge, require_key=False)

    return serve
