"""What each backend does faithfully, from the measured fidelity table (shared reference, section 1).

Notebooks never guess: a cell that needs a capability asks ``backend.supports(name)`` and, when the answer is no,
prints ``backend.explain(name)`` and takes the documented fallback. The README's fidelity table is generated from
this module (``python -m helpers.aws.capabilities``) and a test keeps the two identical.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("embedded", "localstack", "aws")


@dataclass(frozen=True)
class Capability:
    name: str
    summary: str
    embedded: bool
    localstack: bool
    aws: bool = True
    embedded_note: str = ""
    localstack_note: str = ""
    fallback: str = ""

    def supported_on(self, backend: str) -> bool:
        return bool(getattr(self, backend))

    def note_on(self, backend: str) -> str:
        return {"embedded": self.embedded_note, "localstack": self.localstack_note}.get(backend, "")


CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "sqs_fifo_dedup_id",
        "SQS FIFO drops a send whose MessageDeduplicationId was seen in the last 5 minutes",
        embedded=True,
        localstack=True,
    ),
    Capability(
        "sqs_fifo_dedup_survives_delete",
        "The FIFO deduplication id is remembered after the first copy is deleted",
        embedded=False,
        localstack=True,
        embedded_note="moto forgets the id once the first copy is deleted and accepts the same id again",
        fallback="send the duplicate before deleting the first copy; the notebook states what AWS does",
    ),
    Capability(
        "sqs_fifo_content_dedup",
        "SQS FIFO ContentBasedDeduplication (SHA-256 of the body)",
        embedded=True,
        localstack=True,
    ),
    Capability(
        "time_travel",
        "This backend's clock can be moved forward in the notebook (freezegun), e.g. past the 5-minute dedup window",
        embedded=True,
        localstack=False,
        aws=False,
        embedded_note="only when moto runs inside the kernel (not the shared `make lab` server)",
        localstack_note="LocalStack's clock cannot be moved",
        fallback="run that demo on a private in-kernel moto whose clock the notebook moves "
        "(helpers.notebook.private_emulator), and say so",
    ),
    Capability(
        "eventbridge_input_transformer",
        'An InputTransformer whose template quotes every placeholder (`{"k": "<var>"}`) delivers the transformed body',
        embedded=True,
        localstack=True,
    ),
    Capability(
        "eventbridge_input_path",
        "InputPath and Input on targets, and InputTransformer templates with unquoted placeholders (`<var>` as JSON)",
        embedded=False,
        localstack=True,
        embedded_note="moto ignores InputPath and Input, and pastes an unquoted placeholder raw (a non-JSON value "
        "fails the whole PutEvents with HTTP 500)",
        fallback="deliver the whole event and select fields in the consumer, or quote every placeholder",
    ),
    Capability(
        "eventbridge_test_event_pattern",
        "The TestEventPattern API answers whether an event matches a pattern",
        embedded=False,
        localstack=True,
        embedded_note="moto returns an empty answer",
        fallback="route real events to a queue per rule and look at what arrived",
    ),
    Capability(
        "api_destination_http",
        "An API destination target makes an HTTP call with the event as body and the connection's auth",
        embedded=False,
        localstack=True,
        embedded_note="moto calls only with MOTO_EVENTS_INVOKE_HTTP=true, a POST with no body and no auth",
        fallback="helpers delivers matched events to the endpoint from the rule's own target configuration",
    ),
    Capability(
        "api_destination_jsonpath_headers",
        "Header and query values such as `$.detail.customID` are resolved from the event",
        embedded=False,
        localstack=False,
        embedded_note="sent literally",
        localstack_note="sent literally (header values are copied as-is)",
        fallback="helpers resolves the JSONPath values when it delivers",
    ),
    Capability(
        "api_destination_retries_dlq",
        "API destination targets retry (429, 5xx, 401, 407, 409) with backoff and send what fails to the target's DLQ",
        embedded=False,
        localstack=False,
        fallback="helpers applies the target's retry policy and DLQ when it delivers",
    ),
    Capability(
        "stepfunctions_execution",
        "Step Functions runs state machines, with DynamoDB and SQS service integrations",
        embedded=True,
        localstack=True,
        embedded_note="switched on by the backend (execute_state_machine) with MOTO_PORT set to the server's port",
    ),
    Capability(
        "stepfunctions_sync_integration",
        "`states:startExecution.sync` (run a job and wait for it)",
        embedded=False,
        localstack=True,
        embedded_note="moto cannot start nested executions: States.Runtime",
        localstack_note="",
        fallback="a poll loop with DescribeExecution, the loop `.sync` stands for",
    ),
    Capability(
        "stepfunctions_execution_name_idempotent",
        "StartExecution with the same name and input while running returns the same execution",
        embedded=True,
        localstack=True,
    ),
    Capability(
        "dynamodb_conditional_writes",
        "Conditional puts with ReturnValuesOnConditionCheckFailure and transactions with CancellationReasons",
        embedded=True,
        localstack=True,
        embedded_note="atomic under concurrent requests only because the backend serialises moto's writes",
    ),
    Capability(
        "dynamodb_transaction_token",
        "TransactWriteItems ClientRequestToken makes a retried transaction a no-op for 10 minutes",
        embedded=False,
        localstack=True,
        embedded_note="moto applies the transaction twice",
        fallback="make the transaction itself conditional (the idempotency record does this)",
    ),
    Capability(
        "dynamodb_ttl_deletes",
        "Items past their TTL disappear",
        embedded=False,
        localstack=False,
        aws=True,
        embedded_note="TTL is stored, expired items stay readable",
        localstack_note="TTL is stored, expired items stay readable",
        fallback="decide expiry in code from the stored timestamp (AWS deletes expired items in the background, "
        "typically within a few days, and promises no upper bound)",
    ),
    Capability(
        "sns_fifo_dedup",
        "SNS FIFO drops a publish whose MessageDeduplicationId was seen in the last 5 minutes, before any subscriber",
        embedded=False,
        localstack=True,
        embedded_note="moto's SNS does not deduplicate: the subscribed FIFO queue drops the copy only while the first "
        "one is still in it; once it is deleted, the same id is delivered again",
        fallback="publish the retry before the subscriber deletes the first copy; the notebook states what AWS does",
    ),
    Capability(
        "lambda_runs_code",
        "Lambda functions run their code",
        embedded=False,
        localstack=False,
        embedded_note="without Docker, invoke only echoes the payload",
        localstack_note="the community edition needs Docker for Lambda; a rule with a Lambda target accepts the "
        "event (FailedEntryCount 0) and the function never runs",
        fallback="run the handler in the kernel and drive it from the queue or bus",
    ),
    Capability(
        "eventbridge_sns_and_stepfunctions_targets",
        "EventBridge delivers to SNS topics and starts Step Functions executions as rule targets",
        embedded=False,
        localstack=True,
        embedded_note="moto raises NotImplementedError: the whole PutEvents fails",
        localstack_note="measured 2026-12-04: an SNS target reached its SQS subscriber, a Step Functions target "
        "ran an execution (a Lambda target: see lambda_runs_code)",
        fallback="target an SQS queue and start the next step from the queue",
    ),
    Capability(
        "eventbridge_pattern_array_of_objects",
        "A pattern field under an array of objects matches when any element of the array matches",
        embedded=False,
        localstack=True,
        embedded_note="moto never matches such a pattern",
        fallback="refuse to show moto's empty match and say what AWS delivers (LocalStack routes it)",
    ),
    Capability(
        "eventbridge_numeric_string_bound_refused",
        'PutRule refuses a numeric bound given as a string (`{"numeric": [">", "10"]}`)',
        embedded=False,
        localstack=False,
        embedded_note="moto accepts the rule, then every PutEvents on the bus fails with HTTP 500",
        localstack_note="LocalStack accepts the rule; evaluating it then fails inside LocalStack for every event",
        fallback="helpers refuses the pattern before it reaches the backend, as AWS would",
    ),
    Capability(
        "eventbridge_bare_value_refused",
        "PutRule refuses a pattern whose value is not inside an array",
        embedded=True,
        localstack=False,
        localstack_note="LocalStack accepts the rule; it then matches nothing",
        fallback="say that AWS refuses the rule",
    ),
    Capability(
        "eventbridge_replay",
        "StartReplay re-sends archived events to the bus, each with a replay-name field",
        embedded=True,
        localstack=False,
        embedded_note="moto replays every event in the archive, whatever EventStartTime and EventEndTime say "
        "(measured 2026-12-04; the notebooks replay archives that hold only the events to replay)",
        localstack_note="StartReplay fails with InternalError when the window holds archived events (4.14 bug)",
        fallback="show the archive and say what a replay would deliver",
    ),
    Capability(
        "eventbridge_entry_size_limit",
        "PutEvents refuses an entry over 1 MB (256 KB before 2026-01-29)",
        embedded=False,
        localstack=False,
        embedded_note="moto accepts an entry of any size",
        localstack_note="LocalStack 4.14 refuses over the old 256 KB",
        fallback="helpers measures the entry and refuses one over 1 MB before sending",
    ),
    Capability(
        "sqs_message_move_task",
        "SQS StartMessageMoveTask redrives a dead-letter queue back to its source queue",
        embedded=False,
        localstack=True,
        embedded_note="moto raises NotImplementedError (HTTP 500, with a traceback on the server's stderr)",
        fallback="receive from the DLQ, send each message to the source queue, delete it from the DLQ",
    ),
    Capability(
        "sqs_fair_queues",
        "SQS fair queues: a standard queue uses MessageGroupId to deliver quiet tenants' messages first",
        embedded=False,
        localstack=False,
        embedded_note="MessageGroupId on a standard queue is accepted and ignored",
        localstack_note="not implemented in LocalStack 4.14",
        fallback="a FIFO queue with one message group per tenant, shown live",
    ),
)

BY_NAME: dict[str, Capability] = {c.name: c for c in CAPABILITIES}


def get(name: str) -> Capability:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown capability {name!r}; known: {', '.join(sorted(BY_NAME))}") from None


def markdown_table() -> str:
    """The README's fidelity table, generated so it cannot drift from the declarations."""

    def cell(c: Capability, backend: str) -> str:
        mark = "yes" if c.supported_on(backend) else "no"
        note = c.note_on(backend)
        return f"{mark}: {note}" if note else mark

    rows = [
        "| capability | what it means | embedded (moto) | LocalStack 4.14 | AWS | fallback when missing |",
        "|---|---|---|---|---|---|",
    ]
    for c in CAPABILITIES:
        rows.append(
            f"| `{c.name}` | {c.summary} | {cell(c, 'embedded')} | {cell(c, 'localstack')} | "
            f"{cell(c, 'aws')} | {c.fallback or '-'} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
