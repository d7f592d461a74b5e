# learner: "The event id changes on a retry, so I hash the rest of the event: source, detail, time."
# misses: stable_key, one_execution
# hint: time
import hashlib
import json


def consumer_key(event):
    stable = {k: v for k, v in event.items() if k != "id"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()


def execution_name(key):
    return f"payment-{key[:40]}"
