# learner: "The first eight characters of a UUID are unique enough for a name."
# misses: every_request
# hint: key cut to fit


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return "pay-" + key[:8]
