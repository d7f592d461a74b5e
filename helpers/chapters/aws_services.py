"""Notebook 08's harness: AWS APIs that take an idempotency token, each tried twice and counted, and one that does not.

Why a module: the notebook's cells show the calls, the counts and the asserts; what they stand on lives here, tested
on the embedded backend (``tests/chapters/test_aws_services.py``):

- :func:`settle_s`: how long a drain believes "nothing more arrived" on each backend (a parameter, not a lesson);
- :func:`send_order`: a FIFO SendMessage with the client's token as its deduplication id;
- :func:`start_named` and :func:`name_attempts`: ``StartExecution`` with one name, its answer read (an ARN or the
  error code), and the table of starts;
- :func:`order_created` and :class:`KeyClaims`: the talk's event with the client key in ``detail.metadata``, and a
  consumer's conditional put that claims a key once;
- :func:`request_member`, :func:`pattern_of`, :func:`botocore_refusal`: what the API models botocore ships say
  (a field exists; its pattern), and what botocore's own validation does and does not check;
- :func:`durations_table` and :func:`names_table`: the talk's two tables, every AWS name looked up in its API model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

#: Seconds a drain waits for nothing more to arrive before it believes the queue is done. moto delivers inside the
#: call that sends (SQS, SNS to SQS, EventBridge to SQS); LocalStack and AWS deliver asynchronously.
SETTLE_S = {"embedded": 0.1, "localstack": 1.0, "aws": 3.0}


def settle_s(backend: str) -> float:
    """The quiet period :func:`helpers.services.messaging.drain` should wait on this backend."""
    return SETTLE_S.get(backend, max(SETTLE_S.values()))


# -- SQS FIFO ---------------------------------------------------------------------------------------------------------
def send_order(
    sqs: Any, queue_url: str, order_id: str, token: str, *, group: str = "c-456", amount: float = 24.62
) -> dict[str, Any]:
    """SendMessage of an ``OrderCreated`` body to a FIFO queue, the client's token as its deduplication id."""
    body = json.dumps({"order-id": order_id, "amount": amount})
    answer: dict[str, Any] = sqs.send_message(
        QueueUrl=queue_url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=token
    )
    return answer


# -- Step Functions: the execution name -------------------------------------------------------------------------------
def start_named(sfn: Any, machine_arn: str, name: str, payload: Mapping[str, Any], when: str) -> dict[str, Any]:
    """``StartExecution`` with this name: the answer is ``executionArn`` or the error code, never an exception."""
    try:
        arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload))["executionArn"]
    except ClientError as exc:
        return {"when": when, "answer": exc.response["Error"]["Code"], "arn": None}
    return {"when": when, "answer": "executionArn", "arn": arn}


def name_attempts(attempts: Iterable[Mapping[str, Any]]) -> Any:
    """The starts as a table, each marked with whether it answered with the first start's execution."""
    import pandas as pd

    table = pd.DataFrame(list(attempts))
    first = table["arn"].iloc[0]
    table["same execution as the first"] = table["arn"].map(lambda arn: arn is not None and arn == first)
    return table


# -- EventBridge: the classic bus and a consumer that checks the client key -------------------------------------------
def order_created(bus: str, order_id: str, key: str, *, price: float = 24.62, currency: str = "AU") -> dict[str, Any]:
    """A PutEvents entry for the talk's event: the client's token in ``detail.metadata["idempotency-key"]``."""
    data = {"order-id": order_id, "price": price, "currency": currency}
    detail = {"metadata": {"idempotency-key": key}, "data": data}
    return {"Source": "com.orders", "DetailType": "OrderCreated", "Detail": json.dumps(detail), "EventBusName": bus}


class KeyClaims:
    """A consumer's dedup store: one conditional put per key (``attribute_not_exists``), so a key is claimed once."""

    def __init__(self, ddb: Any, table: str, *, attribute: str = "pk") -> None:
        self.ddb, self.table, self.attribute = ddb, table, attribute

    def first_time(self, key: str) -> bool:
        """Claim ``key``: True the first time, False when it was claimed before (any other error raises)."""
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={self.attribute: {"S": key}},
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": self.attribute},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


# -- what the API models say -----------------------------------------------------------------------------------------
@cache
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


def input_shape(service: str, operation: str) -> Any:
    """The request shape of one operation, from the API model botocore ships."""
    return _session().get_service_model(service).operation_model(operation).input_shape


def request_member(service: str, operation: str, member: str) -> bool:
    """True when the AWS API model has this request field: the name is checked, not typed in."""
    return member in input_shape(service, operation).members


def pattern_of(service: str, operation: str, member: str) -> str:
    """The regular expression the API model gives a top-level request field ("" when it gives none)."""
    return str(input_shape(service, operation).members[member].metadata.get("pattern", ""))


def matches_pattern(service: str, operation: str, member: str, value: str) -> bool:
    """Does ``value`` match the model's pattern for the field? (botocore does not ask; AWS does.)"""
    return re.fullmatch(pattern_of(service, operation, member), value) is not None


def botocore_refusal(service: str, operation: str, request: Mapping[str, Any]) -> str | None:
    """What botocore's own validation refuses in a request (types, required members, minimum lengths), or None.

    None says nothing about patterns such as an ARN's shape: botocore does not check them, the service does.
    """
    from botocore.validate import validate_parameters

    try:
        validate_parameters(dict(request), input_shape(service, operation))
    except ParamValidationError as exc:
        return str(exc).splitlines()[-1].strip()
    return None


def answers_of(service: str, operation: str, *path: str) -> list[str]:
    """The values a response field may take: ``answers_of("eventbridgev2", "PutEvents", "Entries", "SuccessCode")``."""
    shape = _session().get_service_model(service).operation_model(operation).output_shape
    for name in path:
        shape = shape.members[name]
        if shape.type_name == "list":
            shape = shape.member
    return list(shape.enum)


# -- the talk's two tables -------------------------------------------------------------------------------------------
def durations_table(sqs_window: tuple[int, int]) -> Any:
    """How long each service remembers a token. ``sqs_window`` is what the private-moto cell counted after 4:59 and
    5:01 (1 and 2 messages); the other values are AWS's documentation, and the last column says which is which."""
    import pandas as pd
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    powertools_s = IdempotencyConfig().expires_after_seconds
    inside, outside = sqs_window
    measured = f"crossed above: {inside} message after 4:59, {outside} after 5:01 (private moto)"
    rows = [
        ("Powertools idempotency (default)", f"{powertools_s // 3600} hour", "read from IdempotencyConfig()"),
        ("Amazon SQS (FIFO) SendMessage", "5 minutes", measured),
        ("Amazon SNS (FIFO) Publish", "5 minutes", "AWS documentation (Publish)"),
        ("Step Functions StartExecution", "90 days", "AWS documentation (StartExecution)"),
        ("EventBridge Custom Event Bus PutEvents", "5 minutes", "AWS documentation (no emulator runs it)"),
    ]
    columns = ["provider", "idempotency duration", "where the value comes from"]
    return pd.DataFrame(rows, columns=columns).set_index("provider")


#: (provider, its token's name, (service, operation) in botocore's models or None for a non-AWS provider)
TOKEN_NAMES: tuple[tuple[str, str, tuple[str, str] | None], ...] = (
    ("Step Functions StartExecution", "name", ("stepfunctions", "StartExecution")),
    ("Lambda durable functions Invoke", "DurableExecutionName", ("lambda", "Invoke")),
    ("Amazon SQS (FIFO) SendMessage", "MessageDeduplicationId", ("sqs", "SendMessage")),
    ("Amazon SNS (FIFO) Publish", "MessageDeduplicationId", ("sns", "Publish")),
    ("EventBridge Custom Event Bus PutEvents", "SystemMetadata.DeduplicationId", ("eventbridgev2", "PutEvents")),
    ("DynamoDB TransactWriteItems", "ClientRequestToken", ("dynamodb", "TransactWriteItems")),
    ("Amazon EC2 RunInstances", "ClientToken", ("ec2", "RunInstances")),
    ("Stripe", "Idempotency-Key", None),
    ("PayPal", "PayPal-Request-Id", None),
    ("Square", "idempotency_key", None),
    ("IETF draft", "Idempotency-Key", None),
    ("Enterprise Integration Patterns", "Message ID", None),
)


def _has_path(service: str, operation: str, dotted: str) -> bool:
    shape = input_shape(service, operation)
    if dotted.startswith("SystemMetadata."):  # a member of each entry, not of the request
        shape = shape.members["Entries"].member
    for name in dotted.split("."):
        if shape.type_name != "structure" or name not in shape.members:
            return False
        shape = shape.members[name]
    return True


def names_table() -> Any:
    """What each provider calls its token; for AWS, whether botocore's API model has that request field."""
    import pandas as pd

    rows = [
        (provider, name, None if where is None else _has_path(*where, name)) for provider, name, where in TOKEN_NAMES
    ]
    return pd.DataFrame(rows, columns=["provider", "idempotency identifier", "in the AWS API model"]).set_index(
        "provider"
    )
