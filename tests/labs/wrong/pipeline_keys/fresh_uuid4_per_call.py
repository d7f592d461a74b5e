# learner: "Every execution needs a unique name: uuid4."
# misses: stable_name, one_execution
# hint: never uuid4()
import uuid


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return f"payment-{uuid.uuid4()}"
