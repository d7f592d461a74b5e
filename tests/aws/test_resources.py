"""ensure_* twice in a row changes nothing; teardown leaves nothing behind."""

from __future__ import annotations

import json
import secrets

import pytest

from helpers.aws.resources import Resources, Target, teardown_all

MACHINE = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def build(res: Resources) -> dict[str, object]:
    queue, dlq = res.ensure_queue_with_dlq("orders", visibility_timeout=5, max_receive_count=2)
    fifo = res.ensure_queue("payments", fifo=True, content_based_dedup=True)
    topic = res.ensure_topic("orders", fifo=True)
    subscription = res.ensure_subscription(topic, fifo)
    bus = res.ensure_bus("bus")
    rule = res.ensure_rule(
        "au-nz", bus=bus, pattern={"detail": {"currency": ["AU", "NZ"]}}, targets=[Target("orders", queue.arn)]
    )
    table = res.ensure_table("ledger", partition_key="charge_id", ttl_attribute="ttl")
    machine = res.ensure_state_machine("flow", MACHINE)
    return {
        "queue": queue, "dlq": dlq, "fifo": fifo, "topic": topic, "subscription": subscription,
        "bus": bus, "rule": rule, "table": table, "machine": machine,
    }  # fmt: skip


def attributes(res: Resources, url: str) -> dict[str, str]:
    attrs = res.backend.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {k: v for k, v in attrs.items() if not k.startswith(("Approximate", "LastModified"))}


PREFIX = "t-res"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


def test_ensure_twice_changes_nothing(res: Resources) -> None:
    first = build(res)
    inventory = res.inventory()
    queue_attrs = attributes(res, first["queue"].url)
    second = build(res)
    assert second == first
    assert res.inventory() == inventory
    assert attributes(res, first["queue"].url) == queue_attrs
    assert len(inventory) == 9, inventory  # queue, dlq, fifo, topic, bus, rule, table, machine, role
    assert json.loads(queue_attrs["RedrivePolicy"])["deadLetterTargetArn"] == first["dlq"].arn


def test_ensure_brings_a_drifted_resource_back(res: Resources) -> None:
    queue = res.ensure_queue("drift", visibility_timeout=5)
    res.ensure_queue("drift", visibility_timeout=9)
    assert attributes(res, queue.url)["VisibilityTimeout"] == "9"
    bus = res.ensure_bus("bus")
    res.ensure_rule("r", bus=bus, pattern={"source": ["a"]}, targets=[Target("one", queue.arn)])
    res.ensure_rule("r", bus=bus, pattern={"source": ["a"]}, targets=[Target("two", queue.arn)])
    targets = res.backend.client("events").list_targets_by_rule(Rule=res.name("r"), EventBusName=res.name("bus"))
    assert [t["Id"] for t in targets["Targets"]] == ["two"]
    arn = res.ensure_state_machine("m", MACHINE)
    changed = {"StartAt": "Q", "States": {"Q": {"Type": "Succeed"}}}
    assert res.ensure_state_machine("m", changed) == arn
    described = res.backend.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    assert json.loads(described["definition"]) == changed


def test_teardown_leaves_no_resource_behind(res: Resources) -> None:
    build(res)
    res.backend.client("secretsmanager").create_secret(Name=res.name("api-key"), SecretString=secrets.token_urlsafe(16))
    assert len(res.inventory()) == 10
    assert res.teardown() == 10
    assert res.inventory() == []
    assert res.teardown() == 0, "a second teardown finds nothing"


def test_teardown_touches_only_its_own_prefix(res: Resources, backend) -> None:  # type: ignore[no-untyped-def]
    other = Resources("t-other", backend)
    kept = other.ensure_queue("keep")
    res.ensure_queue("gone")
    res.teardown()
    assert other.inventory() == [("sqs", kept.name)]
    other.teardown()


def test_teardown_all_finds_course_prefixes(backend) -> None:  # type: ignore[no-untyped-def]
    a, b = Resources("nb97", backend), Resources("lab97", backend)
    a.ensure_table("x")
    b.ensure_queue("y")
    removed = teardown_all(backend=backend)
    assert removed["nb97"] == 1 and removed["lab97"] == 1
    assert a.inventory() == [] and b.inventory() == []


@pytest.mark.parametrize("bad", ["NB06", "", "x" * 30, "nb_06", "6nb"])
def test_prefix_is_validated(bad: str, backend) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="prefix"):
        Resources(bad, backend)


def test_connection_and_api_destination_are_created_and_torn_down_here(res: Resources) -> None:
    auth = {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": secrets.token_urlsafe(16)}}
    conn = res.ensure_connection("conn", authorization_type="API_KEY", auth_parameters=auth)
    # kept when the caller says its secret is unchanged, replaced (a new ARN) when it is not or cannot say
    assert (
        res.ensure_connection("conn", authorization_type="API_KEY", auth_parameters=auth, unchanged=lambda c: True)
        == conn
    )
    replaced = res.ensure_connection("conn", authorization_type="API_KEY", auth_parameters=auth)
    if res.backend.name == "embedded":  # LocalStack gives a connection re-created under the same name the same ARN
        assert replaced != conn
    assert res.backend.client("events").describe_connection(Name=res.name("conn"))["ConnectionArn"] == replaced
    dest = res.ensure_api_destination("dest", connection_arn=replaced, endpoint="http://127.0.0.1:9/pay")
    again = res.ensure_api_destination(
        "dest", connection_arn=replaced, endpoint="http://127.0.0.1:9/pay", rate_limit_per_second=2
    )
    events = res.backend.client("events")
    assert again == dest and events.describe_api_destination(Name=res.name("dest"))["InvocationRateLimitPerSecond"] == 2
    kinds = {kind for kind, _ in res.inventory()}
    assert {"events:connection", "events:api-destination"} <= kinds
    res.teardown()
    assert not {kind for kind, _ in res.inventory()} & {"events:connection", "events:api-destination"}
