# learner: "Workers are processes, so a thread lock is not enough: a file lock serialises them, then I look in the ledger."
# misses: concurrent
# hint: one machine
import fcntl
import json


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        with open("/tmp/lab03-charge.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker at a time, across processes
            if any(c["idempotency_key"] == order["key"] for c in ledger.charges()):
                return
            ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])

    return handle
