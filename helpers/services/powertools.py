"""Powertools for AWS Lambda (Python) idempotency, set up outside Lambda the same way wherever it is compared.

One implementation for every comparison with ``helpers.idempotency`` (the benchmark, notebook 09), so the fairness
choices are made once:

- Powertools expires an ``IN_PROGRESS`` record only when it knows the invocation's remaining time, read from the
  Lambda context. Outside Lambda there is none, so each Powertools "container" registers a stand-in context whose
  ``get_remaining_time_in_millis()`` returns the lease given to the other library (without it Powertools warns,
  and a crashed record blocks its key for the whole ``expires_after_seconds``).
- Each container gets its own client (pass one: the caller instruments it to count calls) and its own local cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class StandInLambdaContext:
    """What Powertools reads its lease from: the invocation's remaining time. Outside Lambda, we supply it."""

    def __init__(self, remaining_ms: int, *, function_name: str = "comparison", request_id: str = "comparison") -> None:
        self.remaining_ms = int(remaining_ms)
        self.function_name = function_name
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def powertools_function(
    body: Callable[..., Any],
    *,
    client: Any,
    table: str,
    key: str,
    validation: str | None,
    lease_s: float,
    expires_after_s: int = 3600,
    prefix: str,
    data_argument: str,
    local_cache: bool = True,
    function_name: str = "comparison",
) -> Callable[..., Any]:
    """``body`` wrapped with Powertools' ``idempotent_function`` on ``table`` (key attribute ``id``, TTL attribute
    ``expiration``): the key from the JMESPath ``key``, payload validation on ``validation``, a lease of
    ``lease_s`` seconds through a stand-in Lambda context. Call the result with ``data_argument=payload``."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    config = IdempotencyConfig(
        event_key_jmespath=key,
        payload_validation_jmespath=validation or "",  # Powertools' own default: no validation
        use_local_cache=local_cache,
        expires_after_seconds=expires_after_s,
    )
    stand_in = StandInLambdaContext(round(lease_s * 1000), function_name=function_name)
    config.register_lambda_context(stand_in)  # type: ignore[arg-type]  # duck-typed: Powertools reads the remaining time
    layer = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
    wrapped: Callable[..., Any] = idempotent_function(
        body, data_keyword_argument=data_argument, persistence_store=layer, config=config, key_prefix=prefix
    )
    return wrapped


def create_table(client: Any, name: str) -> None:
    """The table Powertools' DynamoDB layer expects by default: key ``id`` (S), TTL on ``expiration``."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})
