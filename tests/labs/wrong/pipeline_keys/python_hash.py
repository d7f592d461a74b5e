# learner: "hash() of the client's key is a short, stable number: a fine execution name."
# misses: same_in_any_process, one_execution
# hint: hash() is salted per process


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return f"payment-{hash(key) & 0xFFFFFFFF}"
