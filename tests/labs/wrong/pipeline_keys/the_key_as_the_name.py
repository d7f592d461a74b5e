# learner: "Client keys are UUIDs, and a UUID is a valid execution name: use it as it is."
# misses: stable_name
# hint: 1 to 80 characters


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return key
