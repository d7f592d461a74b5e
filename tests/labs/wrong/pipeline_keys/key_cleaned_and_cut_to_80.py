# learner: "The key itself, with what Step Functions refuses replaced, cut to its 80 characters."
# misses: every_request
# hint: the WHOLE key
import re


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)[:80]
