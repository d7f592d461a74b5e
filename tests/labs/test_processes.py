"""helpers/labs/processes.py: forked workers share nothing after the fork, crash for real, end when told, never leak."""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from helpers.labs.processes import CRASH_EXIT, AwsCall, Channel, children, crash, install_gate, receive, start

remembered: list[str] = []


def _collect(kids: list, until: int, timeout: float = 10.0) -> list:  # type: ignore[type-arg]
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < until and time.monotonic() < deadline:
        got += receive(kids, 0.05)
    return got


def test_a_child_remembers_nothing_of_its_sibling_and_its_parent_nothing_of_it() -> None:
    def main(channel: Channel) -> None:
        while True:
            job = channel.next_job()
            remembered.append(job.body)
            channel.tell("seen", list(remembered))

    with children() as kids:
        kids += [start("a", main), start("b", main)]
        kids[0].post("job", "first")
        kids[0].post("job", "second")
        kids[1].post("job", "third")
        got = _collect(kids, 3)
    seen = {(c.name, tuple(m.body)) for c, m in got}
    assert ("a", ("first", "second")) in seen and ("b", ("third",)) in seen
    assert remembered == []
    assert all(not k.alive for k in kids)


def test_a_crash_ends_the_process_at_once_and_says_so_first() -> None:
    def main(channel: Channel) -> None:
        try:
            crash(channel, {"point": "after"})
        except BaseException:
            channel.tell("swallowed")

    with children() as kids:
        kids.append(start("w", main))
        got = _collect(kids, 2)
    assert [m.kind for _, m in got] == ["crash", "exit"]
    assert got[1][1].body == CRASH_EXIT


def test_a_hanging_child_is_killed_and_reaped_when_the_block_ends() -> None:
    def main(channel: Channel) -> None:
        channel.tell("ready")
        while True:
            time.sleep(60)

    with children() as kids:
        kids.append(start("w", main))
        assert [m.kind for _, m in _collect(kids, 1)] == ["ready"]
        pid = kids[0].pid
    assert kids[0].exitcode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_an_ask_waits_for_the_parent_and_gives_up_after_its_timeout() -> None:
    def main(channel: Channel) -> None:
        channel.tell("answers", [channel.ask("q", 1, timeout=5), channel.ask("q", 2, timeout=0.2)])

    with children() as kids:
        kids.append(start("w", main))
        got = _collect(kids, 1)
        assert got[0][1].kind == "q" and got[0][1].body == 1
        kids[0].answer(got[0][1].ask, "yes")
        rest = _collect(kids, 2)
    assert [m.body for _, m in rest if m.kind == "answers"] == [["yes", None]]


def test_a_child_uses_inherited_clients_on_connections_of_its_own(backend) -> None:  # type: ignore[no-untyped-def]
    """A socket shared with the parent would mix their answers: each side must get its own queue's name back."""
    sqs = backend.client("sqs")
    urls = [sqs.create_queue(QueueName=f"lab-proc-{n}")["QueueUrl"] for n in range(2)]
    sqs.get_queue_attributes(QueueUrl=urls[0])  # the parent's connection is open and pooled before the fork

    def main(channel: Channel) -> None:
        names = [sqs.get_queue_url(QueueName="lab-proc-1")["QueueUrl"] for _ in range(20)]
        channel.tell("names", sorted(set(names)))

    try:
        with children() as kids:
            kids.append(start("w", main))
            mine = {sqs.get_queue_url(QueueName="lab-proc-0")["QueueUrl"] for _ in range(20)}
            got = _collect(kids, 1, timeout=20)
        assert mine == {urls[0]}
        assert [m.body for _, m in got if m.kind == "names"] == [[urls[1]]]
    finally:
        for url in urls:
            sqs.delete_queue(QueueUrl=url)


def test_the_gate_sees_every_call_of_the_child(backend) -> None:  # type: ignore[no-untyped-def]
    ddb = backend.client("dynamodb")

    class Gate:
        def __init__(self, channel: Channel) -> None:
            self.channel = channel

        def before(self, call: AwsCall) -> None:
            self.channel.tell("before", (call.operation, call.writes, call.conditional))

        def after(self, call: AwsCall, ok: bool) -> None:
            self.channel.tell("after", (call.operation, ok))

    def main(channel: Channel) -> None:
        install_gate(Gate(channel))
        ddb.list_tables()
        with contextlib.suppress(Exception):  # the table does not exist: the gate hears of the failure
            ddb.put_item(TableName="nope", Item={"pk": {"S": "x"}}, ConditionExpression="attribute_not_exists(pk)")
        channel.tell("done")

    with children() as kids:
        kids.append(start("w", main))
        got = _collect(kids, 5, timeout=20)
    assert [(m.kind, tuple(m.body) if m.body else None) for _, m in got][:4] == [
        ("before", ("ListTables", False, False)),
        ("after", ("ListTables", True)),
        ("before", ("PutItem", True, True)),
        ("after", ("PutItem", False)),
    ]


def test_aws_calls_are_read_for_the_tables_and_items_they_write() -> None:
    put = AwsCall("dynamodb", "PutItem", {"TableName": "ledger", "Item": {"order_id": {"S": "o-1"}}})
    txn = AwsCall(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "records", "Item": {"pk": {"S": "k"}}, "ConditionExpression": "x"}},
                {"Put": {"TableName": "ledger", "Item": {"order_id": {"S": "o-2"}}}},
            ]
        },
    )
    batch = AwsCall(
        "dynamodb",
        "BatchWriteItem",
        {"RequestItems": {"ledger": [{"PutRequest": {"Item": {"order_id": {"S": "o-3"}}}}]}},
    )
    scan = AwsCall("dynamodb", "Scan", {"TableName": "ledger"})
    assert put.strings_for("ledger", "order_id") == ["o-1"] and not put.conditional
    assert txn.strings_for("ledger", "order_id") == ["o-2"] and txn.conditional
    assert txn.tables_written() == {"records", "ledger"}
    assert batch.strings_for("ledger", "order_id") == ["o-3"]
    assert not scan.writes and scan.items_for("ledger") == [] and scan.tables_written() == set()
    assert AwsCall("sqs", "ReceiveMessage", {}).writes is False
    assert AwsCall("sqs", "SendMessage", {}).writes is True
