# learner: "The consumer must not hammer the key service: wait a little before computing each key."
# misses: every_request
# hint: did not return within
import time
import uuid


def consumer_key(event):
    time.sleep(30)
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))
