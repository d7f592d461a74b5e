# learner: "A POSIX record lock on a file, imported by name, keeps my worker processes apart while I check the ledger."
# misses: concurrent
# hint: one machine
import json
from fcntl import LOCK_EX, LOCK_UN, lockf


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        with open("/tmp/lab03-charge.lockf", "a") as lock:
            lockf(lock, LOCK_EX)  # one worker at a time, across processes
            try:
                if any(c["idempotency_key"] == order["key"] for c in ledger.charges()):
                    return
                ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])
            finally:
                lockf(lock, LOCK_UN)

    return handle
