"""Setup: the connection, the API destination, and the rule with its target (plus the dispatcher's tap queue)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from helpers.aws import backend as backend_mod
from helpers.aws.resources import Queue, Resources, Target
from helpers.services.delivery.target import ConnectionAuth, RetryPolicy, snake


def needs_dispatcher(backend: backend_mod.Backend) -> bool:
    """True where the backend's own API destination delivery is not faithful, so this module delivers."""
    return not all(
        backend.supports(c)
        for c in ("api_destination_http", "api_destination_jsonpath_headers", "api_destination_retries_dlq")
    )


def ensure_connection(
    resources: Resources,
    name: str,
    *,
    api_key: tuple[str, str] | None = None,
    basic: tuple[str, str] | None = None,
    invocation_headers: Mapping[str, str] | None = None,
) -> str:
    """A connection with API-key (``(header, value)``) or basic (``(user, password)``) auth; returns its ARN.

    Generate the secret at run time (``secrets.token_urlsafe``): EventBridge stores it in Secrets Manager and
    DescribeConnection never returns it, so an existing connection is kept only when its secret (read back here)
    holds the same values; ``Resources.ensure_connection`` creates, replaces and (in teardown) deletes it.
    """
    if api_key is not None and basic is None:
        kind = "API_KEY"
        params: dict[str, Any] = {"ApiKeyAuthParameters": {"ApiKeyName": api_key[0], "ApiKeyValue": api_key[1]}}
    elif basic is not None and api_key is None:
        kind = "BASIC"
        params = {"BasicAuthParameters": {"Username": basic[0], "Password": basic[1]}}
    else:
        raise ValueError("give exactly one of api_key=(header, value) or basic=(user, password)")
    if invocation_headers:
        params["InvocationHttpParameters"] = {
            "HeaderParameters": [{"Key": k, "Value": v, "IsValueSecret": False} for k, v in invocation_headers.items()]
        }
    wanted = ConnectionAuth.from_secret(kind, _secret_shape(params))
    secrets = resources.backend.client("secretsmanager")

    def unchanged(current: dict[str, Any]) -> bool:
        if current.get("AuthorizationType") != kind or not current.get("SecretArn"):
            return False
        secret = json.loads(secrets.get_secret_value(SecretId=current["SecretArn"])["SecretString"])
        return ConnectionAuth.from_secret(kind, secret) == wanted

    return resources.ensure_connection(name, authorization_type=kind, auth_parameters=params, unchanged=unchanged)


def _secret_shape(params: Mapping[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    for key, value in params.items():
        if key == "InvocationHttpParameters":
            shape["invocation_http_parameters"] = value
        else:
            shape.update({snake(k): v for k, v in value.items()})
    return shape


@dataclass(frozen=True)
class Route:
    """A rule that sends matched events to an API destination (and, where needed, to the dispatcher's tap)."""

    rule_name: str
    rule_arn: str
    bus_name: str
    target_id: str
    api_destination_arn: str
    dead_letter_queue: Queue | None
    tap: Queue | None


def ensure_route(
    resources: Resources,
    name: str,
    *,
    bus: str,
    pattern: dict[str, Any],
    api_destination_arn: str,
    header_parameters: Mapping[str, str] | None = None,
    query_string_parameters: Mapping[str, str] | None = None,
    path_parameter_values: Iterable[str] | None = None,
    retry_policy: RetryPolicy | None = None,
    dead_letter_queue: Queue | None = None,
    input_path: str | None = None,
    tap: bool | None = None,
) -> Route:
    """A rule on ``bus`` with the API destination target configured as on AWS, plus the tap where needed.

    ``input_path`` (a JSONPath such as ``$.detail``) makes the target send that part of the event as the body
    instead of the whole event. ``tap=None`` adds the tap queue only when the backend needs the dispatcher
    (``needs_dispatcher``).
    """
    http: dict[str, Any] = {}
    if header_parameters:
        http["HeaderParameters"] = dict(header_parameters)
    if query_string_parameters:
        http["QueryStringParameters"] = dict(query_string_parameters)
    if path_parameter_values:
        http["PathParameterValues"] = list(path_parameter_values)
    extra: dict[str, Any] = {"RoleArn": resources.ensure_role()}
    if http:
        extra["HttpParameters"] = http
    if input_path is not None:
        if not input_path.startswith("$"):
            raise ValueError(f"input_path {input_path!r} is not a JSONPath (it must start with '$')")
        extra["InputPath"] = input_path
    if retry_policy is not None:
        extra["RetryPolicy"] = retry_policy.as_api()
    if dead_letter_queue is not None:
        extra["DeadLetterConfig"] = {"Arn": dead_letter_queue.arn}
    targets = [Target("api-destination", api_destination_arn, extra)]
    tap_queue = None
    if tap or (tap is None and needs_dispatcher(resources.backend)):
        tap_queue = resources.ensure_queue(f"{name}-tap")
        targets.append(Target("dispatcher-tap", tap_queue.arn))
    rule_arn = resources.ensure_rule(name, bus=bus, pattern=pattern, targets=targets)
    if tap_queue is not None:
        resources.allow_send_from(tap_queue, rule_arn, "events.amazonaws.com")
    if dead_letter_queue is not None:
        resources.allow_send_from(dead_letter_queue, rule_arn, "events.amazonaws.com")
    return Route(
        resources.name(name),
        rule_arn,
        bus.rsplit("/", 1)[-1],
        "api-destination",
        api_destination_arn,
        dead_letter_queue,
        tap_queue,
    )


def read_dead_letters(backend: backend_mod.Backend, queue: Queue, *, wait_seconds: int = 0) -> list[dict[str, Any]]:
    """Receive and delete everything on a DLQ: ``{"event": ..., "attributes": {...}}`` per message."""
    sqs = backend.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return found
        wait_seconds = 0
        for message in got:
            attributes = {k: v.get("StringValue", "") for k, v in (message.get("MessageAttributes") or {}).items()}
            found.append({"event": json.loads(message["Body"]), "attributes": attributes})
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
