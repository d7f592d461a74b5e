"""The backend choice: default embedded, environment overrides, clear failures, real AWS refused."""

from __future__ import annotations

import socket
import time

import pytest

from helpers.aws import backend as backend_mod
from helpers.aws import capabilities


def test_default_is_embedded_with_an_in_kernel_server(clean_env: pytest.MonkeyPatch) -> None:
    choice = backend_mod.choose({})
    assert choice == backend_mod.BackendChoice("embedded", None, "us-east-1", start_embedded_server=True)


def test_embedded_uses_a_shared_server_when_an_endpoint_is_given() -> None:
    choice = backend_mod.choose({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_DEFAULT_REGION": "eu-west-1"})
    assert choice.name == "embedded"
    assert choice.endpoint_url == "http://127.0.0.1:5000"
    assert choice.region == "eu-west-1"
    assert not choice.start_embedded_server


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({"WORKBOOK_BACKEND": "localstack"}, "http://127.0.0.1:4566"),
        ({"WORKBOOK_BACKEND": "LocalStack", "LOCALSTACK_HOST": "ls.internal:4567"}, "http://ls.internal:4567"),
        ({"WORKBOOK_BACKEND": "localstack", "AWS_ENDPOINT_URL": "http://localstack:4566"}, "http://localstack:4566"),
    ],
)
def test_localstack_endpoint_comes_from_the_environment(env: dict[str, str], endpoint: str) -> None:
    choice = backend_mod.choose(env)
    assert (choice.name, choice.endpoint_url) == ("localstack", endpoint)


@pytest.mark.parametrize("allow", [None, "", "no", "true"])
def test_real_aws_is_refused_without_the_explicit_allowance(allow: str | None) -> None:
    env = {"WORKBOOK_BACKEND": "aws"}
    if allow is not None:
        env["WORKBOOK_ALLOW_REAL_AWS"] = allow
    with pytest.raises(backend_mod.RealAwsRefused, match="WORKBOOK_ALLOW_REAL_AWS=yes"):
        backend_mod.choose(env)


def test_real_aws_refusal_happens_before_any_network_call(
    clean_env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("WORKBOOK_BACKEND", "aws")
    calls: list[object] = []
    monkeypatch.setattr(backend_mod.boto3, "Session", lambda *a, **k: calls.append((a, k)))
    with pytest.raises(backend_mod.RealAwsRefused):
        backend_mod.connect(backend_mod.choose())
    assert calls == []


def test_real_aws_allowed_never_points_at_an_emulator() -> None:
    env = {"WORKBOOK_BACKEND": "aws", "WORKBOOK_ALLOW_REAL_AWS": "yes", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    with pytest.raises(backend_mod.BackendError, match="points at an emulator"):
        backend_mod.choose(env)
    assert backend_mod.choose({"WORKBOOK_BACKEND": "aws", "WORKBOOK_ALLOW_REAL_AWS": "yes"}).name == "aws"


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(backend_mod.BackendError, match="embedded, localstack, aws"):
        backend_mod.choose({"WORKBOOK_BACKEND": "azure"})


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("name", "command"), [("localstack", "docker compose up"), ("embedded", "make lab")])
def test_unreachable_endpoint_fails_fast_with_what_to_do(name: str, command: str) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(backend_mod.BackendUnavailable) as info:
        backend_mod.connect(backend_mod.BackendChoice(name, endpoint, "us-east-1"))
    message = str(info.value)
    assert name in message and endpoint in message and command in message
    assert time.monotonic() - started < 10, "an unreachable backend must fail within bounded timeouts"


def test_an_endpoint_that_is_not_http_is_refused() -> None:
    with pytest.raises(backend_mod.BackendError, match="http"):
        backend_mod.connect(backend_mod.BackendChoice("localstack", "file:///etc/passwd", "us-east-1"))


def test_embedded_server_binds_loopback_and_runs_step_functions(backend: backend_mod.Backend) -> None:
    if backend.name != "embedded" or not backend.in_kernel:
        pytest.skip("checks the in-kernel moto server")
    assert backend.endpoint_url.startswith("http://127.0.0.1:")
    host, port = backend.server.get_host_and_port()
    assert host == "127.0.0.1"
    import os

    assert os.environ["MOTO_PORT"] == str(port)
    assert backend.health()["status"] == "running"
    sfn = backend.client("stepfunctions")
    definition = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 7, "End": true}}}'
    arn = sfn.create_state_machine(name="t-backend-pass", definition=definition, roleArn=_role(backend))[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    deadline = time.monotonic() + 10
    while (status := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["status"] == "SUCCEEDED" and status["output"] == "7"
    sfn.delete_state_machine(stateMachineArn=arn)


def _role(backend: backend_mod.Backend) -> str:
    account = backend.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:iam::{account}:role/t-backend"


def test_clients_carry_made_up_credentials_and_bounded_timeouts(backend: backend_mod.Backend) -> None:
    if backend.name == "aws":
        pytest.skip("emulators only")
    sqs = backend.client("sqs")
    assert sqs is backend.client("sqs"), "clients are cached per service"
    credentials = backend.session.get_credentials()
    assert credentials.access_key.startswith("EMU") and len(credentials.secret_key) >= 30
    assert sqs.meta.config.connect_timeout == 2


def test_capabilities_cover_every_backend_and_explain_the_fallback(backend: backend_mod.Backend) -> None:
    names = [c.name for c in capabilities.CAPABILITIES]
    assert len(names) == len(set(names))
    for cap in capabilities.CAPABILITIES:
        text = backend.explain(cap.name)
        if not backend.supports(cap.name):
            assert cap.fallback, f"{cap.name} has no documented fallback"
            assert cap.fallback in text
    with pytest.raises(KeyError, match="known:"):
        backend.supports("teleportation")


def test_time_travel_needs_moto_in_this_process() -> None:
    shared = backend_mod.Backend("embedded", "http://127.0.0.1:1", "us-east-1", session=None, in_kernel=False)
    in_kernel = backend_mod.Backend("embedded", "http://127.0.0.1:1", "us-east-1", session=None, in_kernel=True)
    assert not shared.supports("time_travel") and in_kernel.supports("time_travel")
    assert not backend_mod.Backend("localstack", "http://x", "us-east-1", session=None).supports("time_travel")


def test_concurrent_conditional_updates_have_exactly_one_winner(backend: backend_mod.Backend) -> None:
    """On AWS a conditional write is atomic; the embedded backend makes moto's threaded server agree."""
    import threading
    import uuid

    ddb = backend.client("dynamodb")
    table = "t-backend-race"
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    try:
        for _ in range(10):
            key, winners = str(uuid.uuid4()), []
            barrier = threading.Barrier(12)

            def claim(worker: int, key: str = key, winners: list = winners, barrier=barrier) -> None:
                barrier.wait()
                try:
                    ddb.update_item(
                        TableName=table,
                        Key={"pk": {"S": key}},
                        UpdateExpression="SET w = :w",
                        ConditionExpression="attribute_not_exists(pk)",
                        ExpressionAttributeValues={":w": {"S": str(worker)}},
                    )
                    winners.append(worker)
                except ddb.exceptions.ConditionalCheckFailedException:
                    pass

            threads = [threading.Thread(target=claim, args=(i,)) for i in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(winners) == 1, winners
    finally:
        ddb.delete_table(TableName=table)
