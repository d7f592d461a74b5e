# learner: "The library with a MemoryStore: no table to create, and every request of the endpoint shares it."
# misses: second_instance, burst
# hint: another instance
from helpers.idempotency import Idempotency, IdempotencyConfig, MemoryStore, handle_http

idem = Idempotency(IdempotencyConfig(scope="charges", token_header="Idempotency-Key"), store=MemoryStore())


def make_endpoint(charge):
    def serve(method, path, headers, body):
        return handle_http(idem, method, path, headers, body, charge)

    return serve
