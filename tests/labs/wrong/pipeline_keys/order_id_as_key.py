# learner: "One payment per order: the order id is the natural key."
# misses: both_requests
# hint: the order is not the request
import uuid


def consumer_key(event):
    return event["detail"]["data"]["order-id"]


def execution_name(key):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"payments/{key}"))
