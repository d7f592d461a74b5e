# learner: "A uuid4 per key, remembered in a dict, so the same key always gets the same name."
# misses: same_in_any_process, one_execution
# hint: remembered in memory
import uuid

names = {}


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return names.setdefault(key, f"payment-{uuid.uuid4()}")
