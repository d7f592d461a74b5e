# learner: "EventBridge gives every event a unique id: that identifies it."
# misses: stable_key, one_execution
# hint: event id
import uuid


def consumer_key(event):
    return event["id"]


def execution_name(key):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))
