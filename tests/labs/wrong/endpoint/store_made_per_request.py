# learner: "Each request gets the idempotency handling of the library."
# misses: replay
# hint: nothing remembered
from helpers.idempotency import Idempotency, IdempotencyConfig, MemoryStore, handle_http


def make_endpoint(charge):
    def serve(method, path, headers, body):
        idem = Idempotency(IdempotencyConfig(scope="charges", token_header="Idempotency-Key"), store=MemoryStore())
        return handle_http(idem, method, path, headers, body, charge)

    return serve
