# learner: "A UUIDv5 of the key, with today's date in front so the names sort by day in the console."
# misses: same_in_any_process
# hint: changes with the clock
import datetime
import uuid


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"]


def execution_name(key):
    return f"{datetime.date.today():%Y%m%d}-{uuid.uuid5(uuid.NAMESPACE_URL, 'payments/' + key)}"
