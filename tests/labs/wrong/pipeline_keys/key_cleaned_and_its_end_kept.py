# learner: "Keys differ at their end (attempt-1, attempt-2): clean the key and keep its last 80 characters."
# misses: every_request
# hint: the WHOLE key
import re


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return re.sub(r"[^A-Za-z0-9_-]", "-", key)[-80:]  # the end of a key is where keys differ
