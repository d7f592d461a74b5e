# learner: "Keys are identifiers: normalise them (strip, lower-case) so the same key always looks the same."
# misses: both_requests
# hint: differ only in case
from helpers.chapters.pipeline import derive_key


def consumer_key(event):
    return event["detail"]["metadata"]["idempotency-key"].strip().lower()


def execution_name(key):
    return derive_key(key, "execution")
