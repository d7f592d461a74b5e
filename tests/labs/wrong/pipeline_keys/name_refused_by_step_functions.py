# learner: "The name says what it is: 'payment for <key>'."
# misses: stable_name
# hint: 1 to 80 characters


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return f"payment for {key}"
