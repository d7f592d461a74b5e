"""EventBridge API destination delivery that behaves like AWS where the emulator does not.

Who does what
-------------
**AWS EventBridge**, for a rule whose target is an API destination, does all of this itself:

1. matches the event against the rule's pattern;
2. builds the request: the event as a JSON body; the target's ``HttpParameters`` (``HeaderParameters``,
   ``QueryStringParameters``, ``PathParameterValues``), each value either static or a JSONPath such as
   ``$.detail.customID``; the connection's authorization (API key or basic auth, read from the connection's
   Secrets Manager secret) and the connection's own ``InvocationHttpParameters``, which win over the target's;
3. sends it no faster than the destination's ``InvocationRateLimitPerSecond``, with a 5 s timeout;
4. retries 401, 407, 409, 429, 5xx and timeouts with exponential backoff and jitter, honouring ``Retry-After``,
   until the target's ``RetryPolicy`` (``MaximumRetryAttempts``, ``MaximumEventAgeInSeconds``) runs out; other
   statuses (1xx, 2xx, 3xx and the remaining 4xx) are not retried;
5. puts what failed on the target's ``DeadLetterConfig`` queue: the event as the body and the message attributes
   ``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE``, ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION``
   (``MaximumRetryAttempts`` or ``MaximumEventAgeInSeconds``, only when a retry limit ended the delivery) and
   ``RETRY_ATTEMPTS``.

Sources: EventBridge User Guide, "API destinations as targets" (headers, 5 s timeout, error codes: the current page
lists 401, 407, 409, 429 and 5xx as retried; older versions listed only 429 and 5xx) and "Using dead-letter queues
to process undelivered events" (attribute names); API reference ``HttpParameters`` (connection values take
precedence). The ``ERROR_CODE`` / ``ERROR_MESSAGE`` pairs for an unreachable endpoint (``SDK_CLIENT_ERROR``,
"Unable to invoke ApiDestination endpoint: API destination endpoint cannot be reached.") and a timeout (``UNKNOWN``)
follow DLQ records from real accounts; which code AWS gives an HTTP error status is not documented, and this module
uses ``SDK_CLIENT_ERROR`` for it.

**The emulators** (``helpers.aws.capabilities``: ``api_destination_http``, ``api_destination_jsonpath_headers``,
``api_destination_retries_dlq``) store all of that configuration but do not act on most of it: moto makes no call
(or, with ``MOTO_EVENTS_INVOKE_HTTP=true``, a POST without body or auth); LocalStack calls with the event and the
auth header but copies header values literally and never retries or dead-letters.

**Here**, the backend keeps doing what it does faithfully: it stores the rule, its targets, the connection and its
secret, and its own pattern matching decides which events go, because the rule gets a second target, an SQS "tap"
queue (``ensure_route``). This module does steps 2-5: :class:`ApiDestinationDispatcher` drains the tap and delivers
each event by the configuration it reads back from the backend (``ListTargetsByRule``, ``DescribeApiDestination``,
``DescribeConnection`` and ``GetSecretValue`` on the connection's ``SecretArn``), so changing the rule changes what
happens. Every attempt is recorded (``attempts``, ``frame()``, ``sequence_diagram()``); secret header values are
redacted in every record. The clock is injectable (the idempotency library's :class:`ManualClock`, re-exported
here) so a day of retries runs in milliseconds, and the backoff jitter is seeded.

On LocalStack the backend's own call also reaches the endpoint (with the literal header value); only the ca

One module per concern: ``jsonpath`` (parameter values), ``ratelimit`` (the token bucket), ``target`` (the
configuration read back), ``request`` (the HTTP call and what is retried), ``dispatcher`` (the timeline, records and
diagram) and ``routes`` (setup). Everything is importable from ``helpers.services.delivery``.
"""

from __future__ import annotations

from helpers.idempotency.clock import Clock, ManualClock, SystemClock
from helpers.services.delivery.dispatcher import ApiDestinationDispatcher, Attempt, Delivery
from helpers.services.delivery.jsonpath import MISSING, jsonpath, resolve_value
from helpers.services.delivery.ratelimit import TokenBucket
from helpers.services.delivery.request import (
    CONTENT_TYPE,
    HTTP_ERROR_CODE,
    REDACTED,
    REQUEST_TIMEOUT_S,
    RETRYABLE_4XX,
    STANDARD_HEADERS,
    TIMEOUT_ERROR_CODE,
    UNREACHABLE_ERROR_CODE,
    USER_AGENT,
    Request,
    Response,
    build_request,
    is_retryable,
    send,
)
from helpers.services.delivery.routes import (
    Route,
    ensure_connection,
    ensure_route,
    needs_dispatcher,
    read_dead_letters,
)
from helpers.services.delivery.target import (
    DEFAULT_EVENT_AGE_S,
    DEFAULT_RETRY_ATTEMPTS,
    ConnectionAuth,
    DeliveryTarget,
    RetryPolicy,
    read_delivery_target,
)

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_EVENT_AGE_S",
    "DEFAULT_RETRY_ATTEMPTS",
    "HTTP_ERROR_CODE",
    "MISSING",
    "REDACTED",
    "REQUEST_TIMEOUT_S",
    "RETRYABLE_4XX",
    "STANDARD_HEADERS",
    "TIMEOUT_ERROR_CODE",
    "UNREACHABLE_ERROR_CODE",
    "USER_AGENT",
    "ApiDestinationDispatcher",
    "Attempt",
    "Clock",
    "ConnectionAuth",
    "Delivery",
    "DeliveryTarget",
    "ManualClock",
    "Request",
    "Response",
    "RetryPolicy",
    "Route",
    "SystemClock",
    "TokenBucket",
    "build_request",
    "ensure_connection",
    "ensure_route",
    "is_retryable",
    "jsonpath",
    "needs_dispatcher",
    "read_dead_letters",
    "read_delivery_target",
    "resolve_value",
    "send",
]
