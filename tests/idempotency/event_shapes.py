"""Lambda events as AWS delivers them (API Gateway REST and HTTP APIs, SQS), and what a retry of each looks like.

The JSON files in events/ follow the documented event formats field for field; the values are made up. A client's
retry of an API request reaches the function as a NEW event: another request id, time and trace header, and the
body may be re-serialised (other whitespace or key order). An SQS redelivery keeps the message id and body but
gets a new receipt handle and a higher receive count.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def body_of(event: dict[str, Any]) -> dict[str, Any]:
    """The order the client sent (API Gateway's ``body``, or the first SQS record's)."""
    raw = event["Records"][0]["body"] if "Records" in event else event["body"]
    return json.loads(raw)


def client_retry(event: dict[str, Any]) -> dict[str, Any]:
    """The same client request sent again through API Gateway: same key and body content, new request metadata."""
    retry = copy.deepcopy(event)
    ctx = retry["requestContext"]
    ctx["requestId"] = "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b" if "-" in ctx["requestId"] else "Cx3B9hLZjoEEMsA="
    for field, value in (("requestTime", "04/Dec/2026:10:15:33 +0000"), ("time", "04/Dec/2026:10:15:33 +0000")):
        if field in ctx:
            ctx[field] = value
    for field in ("requestTimeEpoch", "timeEpoch"):
        if field in ctx:
            ctx[field] += 2_000
    if "extendedRequestId" in ctx:
        ctx["extendedRequestId"] = "Cx2yZF9bDoEFc2R="
    for headers in (retry["headers"], retry.get("multiValueHeaders") or {}):
        for name in list(headers):
            if name.lower() == "x-amzn-trace-id":
                new = "Root=1-6750a1b4-5e6f7a8b9c0d1e2f3a4b5c6d"
                headers[name] = [new] if isinstance(headers[name], list) else new
    # the client library re-serialised the body: keys in another order, other whitespace
    order = body_of(event)
    retry["body"] = json.dumps(dict(reversed(list(order.items()))), indent=2)
    return retry


def sqs_redelivery(event: dict[str, Any]) -> dict[str, Any]:
    """The same SQS message delivered again after its visibility timeout."""
    again = copy.deepcopy(event)
    record = again["Records"][0]
    record["receiptHandle"] = record["receiptHandle"][::-1]
    attrs = record["attributes"]
    attrs["ApproximateReceiveCount"] = str(int(attrs["ApproximateReceiveCount"]) + 1)
    return again


def encode_body(event: dict[str, Any], how: str) -> dict[str, Any]:
    """The event with its body (API Gateway) or first record's body (SQS) encoded: ``base64`` (API Gateway does it for
    binary media types and sets ``isBase64Encoded``) or ``base64_gzip`` (a gzip-compressed body, then base64)."""
    encoded = copy.deepcopy(event)
    holder = encoded["Records"][0] if "Records" in encoded else encoded
    raw = holder["body"].encode()
    if how == "base64_gzip":
        raw = gzip.compress(raw, mtime=0)
    holder["body"] = base64.b64encode(raw).decode()
    if "Records" not in encoded:
        encoded["isBase64Encoded"] = True
    return encoded
