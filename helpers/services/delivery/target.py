"""A rule's API destination target as the backend describes it: retry policy, connection auth, HTTP parameters."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.aws import backend as backend_mod

DEFAULT_RETRY_ATTEMPTS = 185
DEFAULT_EVENT_AGE_S = 86_400


@dataclass(frozen=True)
class RetryPolicy:
    """A target's RetryPolicy; AWS's defaults are 185 retries and 24 hours."""

    maximum_retry_attempts: int = DEFAULT_RETRY_ATTEMPTS
    maximum_event_age_seconds: int = DEFAULT_EVENT_AGE_S

    def as_api(self) -> dict[str, int]:
        return {
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": self.maximum_event_age_seconds,
        }

    @classmethod
    def from_api(cls, data: Mapping[str, Any] | None) -> RetryPolicy:
        data = data or {}
        return cls(
            int(data.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)),
            int(data.get("MaximumEventAgeInSeconds", DEFAULT_EVENT_AGE_S)),
        )


@dataclass(frozen=True)
class ConnectionAuth:
    """What a connection adds to every request. Secret values never appear in ``repr`` or in records."""

    authorization_type: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    secret_headers: frozenset[str] = frozenset()
    secret_query: frozenset[str] = frozenset()

    @classmethod
    def from_secret(cls, authorization_type: str, secret: Mapping[str, Any]) -> ConnectionAuth:
        """Build from the connection's secret (AWS and moto store it with snake_case keys; CamelCase accepted)."""
        s = {snake(k): v for k, v in secret.items()}
        headers: list[tuple[str, str]] = []
        secret_headers: set[str] = set()
        secret_query: set[str] = set()
        if authorization_type == "API_KEY":
            name, value = s.get("api_key_name"), s.get("api_key_value")
            if not name or value is None:
                raise ValueError("the connection's secret has no api_key_name / api_key_value")
            headers.append((str(name), str(value)))
            secret_headers.add(str(name).lower())
        elif authorization_type == "BASIC":
            user, password = s.get("username"), s.get("password")
            if user is None or password is None:
                raise ValueError("the connection's secret has no username / password")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
            secret_headers.add("authorization")
        else:
            raise NotImplementedError(
                f"connection authorization {authorization_type!r} is not delivered here (API_KEY and BASIC are); "
                "OAuth needs a token endpoint the course does not run"
            )
        extra = s.get("invocation_http_parameters") or {}
        extra = {snake(k): v for k, v in extra.items()}
        if extra.get("body_parameters"):
            raise NotImplementedError("connection BodyParameters are not delivered here; use header or query values")
        query: list[tuple[str, str]] = []
        for kind, target, secrets_set in (("header", headers, secret_headers), ("query_string", query, secret_query)):
            for p in extra.get(f"{kind}_parameters") or []:
                p = {snake(k): v for k, v in p.items()}
                target.append((str(p["key"]), str(p.get("value", ""))))
                if p.get("is_value_secret"):
                    secrets_set.add(str(p["key"]).lower())
        return cls(authorization_type, tuple(headers), tuple(query), frozenset(secret_headers), frozenset(secret_query))


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if any(c.isupper() for c in name) else name


@dataclass(frozen=True)
class DeliveryTarget:
    """One rule target of type API destination, as the backend describes it."""

    rule_arn: str
    rule_name: str
    bus_name: str
    target_id: str
    target_arn: str
    endpoint: str
    http_method: str
    rate_limit_per_second: int | None
    header_parameters: dict[str, str]
    query_string_parameters: dict[str, str]
    path_parameter_values: tuple[str, ...]
    retry_policy: RetryPolicy
    dead_letter_arn: str | None
    input: str | None = None
    input_path: str | None = None
    auth: ConnectionAuth = field(default=ConnectionAuth("NONE"), repr=False)

    def summary(self) -> dict[str, Any]:
        """The configuration a notebook shows: everything but the secret and the volatile ARNs."""
        return {
            "method": self.http_method,
            "endpoint path": urllib.parse.urlsplit(self.endpoint).path,
            "rate limit / s": self.rate_limit_per_second,
            "headers": dict(self.header_parameters),
            "query": dict(self.query_string_parameters),
            "path values": list(self.path_parameter_values),
            "auth": self.auth.authorization_type,
            "max retries": self.retry_policy.maximum_retry_attempts,
            "max event age s": self.retry_policy.maximum_event_age_seconds,
            "dead-letter queue": (self.dead_letter_arn or "").rsplit(":", 1)[-1] or None,
        }


def _name_from_arn(arn: str, kind: str) -> str:
    # arn:aws:events:region:account:api-destination/<name>/<uuid>  or  connection/<name>/<uuid>
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) < 2 or parts[0] != kind:
        raise ValueError(f"{arn!r} is not an EventBridge {kind} ARN")
    return parts[1]


def read_delivery_target(
    backend: backend_mod.Backend, *, rule: str, bus: str, target_id: str | None = None
) -> DeliveryTarget:
    """Read a rule's API destination target back from the backend, with its destination and connection."""
    events = backend.client("events")
    bus_name = bus.rsplit("/", 1)[-1]
    rule_arn = events.describe_rule(Name=rule, EventBusName=bus_name)["Arn"]
    targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus_name)["Targets"]
    candidates = [t for t in targets if ":api-destination/" in t["Arn"] and target_id in (None, t["Id"])]
    if len(candidates) != 1:
        found = ", ".join(t["Id"] for t in targets) or "none"
        raise LookupError(f"rule {rule!r} needs exactly one API destination target (id {target_id}); has: {found}")
    target = candidates[0]
    if target.get("InputTransformer"):
        raise NotImplementedError("InputTransformer on an API destination target is not delivered here")
    destination = events.describe_api_destination(Name=_name_from_arn(target["Arn"], "api-destination"))
    connection = events.describe_connection(Name=_name_from_arn(destination["ConnectionArn"], "connection"))
    auth = ConnectionAuth("NONE")
    if connection.get("SecretArn"):
        secret = backend.client("secretsmanager").get_secret_value(SecretId=connection["SecretArn"])
        auth = ConnectionAuth.from_secret(connection["AuthorizationType"], json.loads(secret["SecretString"]))
    http = target.get("HttpParameters") or {}
    rate = destination.get("InvocationRateLimitPerSecond")
    return DeliveryTarget(
        rule_arn=rule_arn,
        rule_name=rule,
        bus_name=bus_name,
        target_id=target["Id"],
        target_arn=target["Arn"],
        endpoint=destination["InvocationEndpoint"],
        http_method=destination.get("HttpMethod", "POST"),
        rate_limit_per_second=int(rate) if rate else None,
        header_parameters=dict(http.get("HeaderParameters") or {}),
        query_string_parameters=dict(http.get("QueryStringParameters") or {}),
        path_parameter_values=tuple(http.get("PathParameterValues") or ()),
        retry_policy=RetryPolicy.from_api(target.get("RetryPolicy")),
        dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
        input=target.get("Input"),
        input_path=target.get("InputPath"),
        auth=auth,
    )
