# learner: "The same order content is the same request: hash detail.data."
# misses: both_requests
# hint: the order is not the request
import hashlib
import json


def consumer_key(event):
    return hashlib.sha256(json.dumps(event["detail"]["data"], sort_keys=True).encode()).hexdigest()


def execution_name(key):
    return key[:64]
