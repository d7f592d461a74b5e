"""instruments.trace and .viz: what is recorded is what happened, and the diagrams are exact, stable text."""

from __future__ import annotations

import pytest

from helpers.aws.resources import Resources
from helpers.instruments import viz
from helpers.instruments.faults import FaultPlan, ResponseLost, WorkerCrashed, retry
from helpers.instruments.trace import Trace, call_label, reply_label
from helpers.instruments.viz import (
    HIGHLIGHT_STYLE,
    TAKEN_EDGE_STYLE,
    FlowEdge,
    FlowGroup,
    FlowNode,
    Mermaid,
    flowchart,
    identifier,
    sequence_diagram,
    state_diagram,
    timeline,
)


# -- recording -------------------------------------------------------------------------------------------------------
def test_steps_are_numbered_in_logical_time() -> None:
    t = Trace("demo")
    a = t.record("orders", "payments", "charge", key="o-1")
    b = t.reply("payments", "orders", "receipt", key="o-1")
    assert (a.step, b.step) == (1, 2)
    assert [s.kind for s in t] == ["call", "reply"]
    assert len(t) == 2 and t.keys() == ["o-1"]
    with pytest.raises(ValueError, match="unknown step kind"):
        t.record("a", "b", "x", kind="teleport")


def test_exchange_records_reply_lost_response_crash_and_error() -> None:
    t = Trace()
    with t.exchange("orders", "payments", "charge", key="k") as ex:
        ex.reply = "receipt r-1"
    with pytest.raises(ResponseLost), t.exchange("orders", "payments", "charge", key="k"):
        raise ResponseLost("k", 1)
    with pytest.raises(WorkerCrashed), t.exchange("queue", "worker", "deliver", key="k"):
        raise WorkerCrashed("k", 1)
    with pytest.raises(KeyError), t.exchange("orders", "payments", "charge"):
        raise KeyError("boom")
    assert [(s.src, s.dst, s.label, s.kind) for s in t] == [
        ("orders", "payments", "charge", "call"),
        ("payments", "orders", "receipt r-1", "reply"),
        ("orders", "payments", "charge", "call"),
        ("payments", "orders", "response lost", "lost"),
        ("queue", "worker", "deliver", "call"),
        ("worker", "worker", "crashed before answering", "crash"),
        ("orders", "payments", "charge", "call"),
        ("payments", "orders", "KeyError", "error"),
    ]


def test_a_retried_lost_response_draws_the_talks_retried_sequence() -> None:
    t = Trace()
    plan = FaultPlan.script({"lose_response": {"o-1": [1]}})

    def attempt(n: int) -> str:
        with t.exchange("client", "server", f"charge o-1 (attempt {n})", key="o-1") as ex:
            ex.reply = plan.call("o-1", lambda: "receipt")
        return ex.reply

    assert retry(attempt).attempts == 2
    assert t.sequence().source == "\n".join(
        [
            "sequenceDiagram",
            "    participant client",
            "    participant server",
            "    client->>server: charge o-1 (attempt 1)",
            "    server--xclient: response lost",
            "    client->>server: charge o-1 (attempt 2)",
            "    server-->>client: receipt",
        ]
    )


def test_view_filters_and_renumbers() -> None:
    t = Trace()
    t.record("a", "b", "1", key="x")
    m = t.mark()
    t.record("a", "b", "2", key="y")
    t.record("b", "c", "3", key="x", kind="effect")
    t.note("a", "hello", key="x")
    assert [s.label for s in t.view(since=m)] == ["2", "3", "hello"]
    assert [s.step for s in t.view(since=m)] == [1, 2, 3]
    assert [s.label for s in t.view(key="x")] == ["1", "3", "hello"]
    assert [s.label for s in t.view(key=["x", "y"], kinds=["call"])] == ["1", "2"]
    assert [s.label for s in t.view(actors=["a", "b"])] == ["1", "2", "hello"]
    assert t.count(kind="effect") == 1 and t.count(src="a") == 3 and t.count(key="x", label="h") == 1


def test_frame_has_one_row_per_step() -> None:
    t = Trace()
    t.record("a", "b", "go", key="k", note="n")
    frame = t.frame()
    assert list(frame.columns) == ["from", "to", "message", "kind", "key", "note"]
    assert frame.index.name == "step" and frame.loc[1, "message"] == "go" and frame.loc[1, "note"] == "n"


# -- boto3 instrumentation -------------------------------------------------------------------------------------------
@pytest.fixture
def sqs_and_queue(backend):  # type: ignore[no-untyped-def]
    res = Resources("test-trace", backend)
    res.teardown()
    queue = res.ensure_queue("jobs", fifo=True)
    client = backend.client("sqs", retries={"max_attempts": 1})
    yield client, queue
    res.teardown()


def test_instrument_records_calls_replies_and_error_codes(sqs_and_queue) -> None:  # type: ignore[no-untyped-def]
    sqs, queue = sqs_and_queue
    t = Trace()
    t.instrument(sqs, "someone-else")
    # instrumenting again replaces the first settings, and never records a call twice
    t.instrument(sqs, "orders-service", key=lambda op, params, parsed: params.get("MessageDeduplicationId", ""))
    sqs.send_message(QueueUrl=queue.url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="tok-1")
    got = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10)["Messages"]
    with pytest.raises(sqs.exceptions.ClientError):
        sqs.get_queue_url(QueueName="test-trace-does-not-exist")
    rows = [(s.src, s.dst, s.kind, s.key) for s in t]
    assert rows == [
        ("orders-service", "SQS", "call", "tok-1"),
        ("SQS", "orders-service", "reply", "tok-1"),
        ("orders-service", "SQS", "call", ""),
        ("SQS", "orders-service", "reply", ""),
        ("orders-service", "SQS", "call", ""),
        ("SQS", "orders-service", "error", ""),
    ]
    labels = [s.label for s in t]
    assert labels[0] == "SendMessage (dedup id tok-1)"
    assert labels[1].startswith("MessageId ")
    assert labels[3] == f"{len(got)} message"
    assert labels[5] in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")

    t.uninstrument(sqs)
    sqs.receive_message(QueueUrl=queue.url)
    assert len(t) == 6, "no recording after uninstrument"


def test_instrument_target_label_reply_and_skip(sqs_and_queue) -> None:  # type: ignore[no-untyped-def]
    sqs, queue = sqs_and_queue
    t = Trace()
    t.instrument(
        sqs,
        "worker",
        target="orders queue",
        label=lambda op, params: "poll" if op == "ReceiveMessage" else None,
        reply=lambda op, parsed: "nothing" if op == "ReceiveMessage" and not parsed.get("Messages") else None,
        skip={"GetQueueAttributes"},
    )
    sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])
    sqs.receive_message(QueueUrl=queue.url)
    sqs.purge_queue(QueueUrl=queue.url)
    t.uninstrument()
    assert [(s.src, s.dst, s.label) for s in t] == [
        ("worker", "orders queue", "poll"),
        ("orders queue", "worker", "nothing"),
        ("worker", "orders queue", "PurgeQueue"),
        ("orders queue", "worker", "ok"),
    ]


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("SendMessage", {"MessageBody": "x"}, "SendMessage"),
        ("Publish", {"MessageDeduplicationId": "d"}, "Publish (dedup id d)"),
        ("StartExecution", {"name": "tok"}, "StartExecution (name tok)"),
        ("PutEvents", {"Entries": [{}]}, "PutEvents (1 event)"),
        ("PutEvents", {"Entries": [{}, {}]}, "PutEvents (2 events)"),
        ("PutItem", {"ConditionExpression": "attribute_not_exists(pk)"}, "PutItem (if attribute_not_exists(pk))"),
        ("SendMessageBatch", {"Entries": [1, 2, 3]}, "SendMessageBatch (3 messages)"),
        ("GetItem", {}, "GetItem"),
    ],
)
def test_default_call_labels(operation: str, params: dict, expected: str) -> None:
    assert call_label(operation, params) == expected


def test_default_reply_labels() -> None:
    assert reply_label("ReceiveMessage", {"Messages": [1, 2]}) == "2 messages"
    assert reply_label("ReceiveMessage", {}) == "0 messages"
    assert reply_label("PutEvents", {"Entries": [{"EventId": "e-1"}]}) == "EventId e-1"
    assert reply_label("StartExecution", {"executionArn": "arn:aws:states:r:1:execution:sm:tok"}) == "execution tok"
    assert reply_label("GetItem", {}) == "no item" and reply_label("GetItem", {"Item": {}}) == "item"
    assert reply_label("DeleteMessage", {}) == "ok"


# -- Mermaid ---------------------------------------------------------------------------------------------------------
def test_mermaid_bundle_has_the_mime_type_markdown_and_plain_text() -> None:
    m = Mermaid("sequenceDiagram\n    a->>b: hi\n")
    bundle = m._repr_mimebundle_()
    assert set(bundle) == {"text/vnd.mermaid", "text/markdown", "text/plain"}
    assert bundle["text/vnd.mermaid"] == bundle["text/plain"] == "sequenceDiagram\n    a->>b: hi"
    assert bundle["text/markdown"] == "```mermaid\nsequenceDiagram\n    a->>b: hi\n```"
    assert m == Mermaid("sequenceDiagram\n    a->>b: hi") and m.lines[1] == "    a->>b: hi"


def test_identifiers_are_safe_unique_and_not_keywords() -> None:
    taken: set[str] = set()
    assert identifier("orders-service", taken) == "orders_service"
    assert identifier("orders service", taken) == "orders_service_2"
    assert identifier("end") == "end_" and identifier("Note") == "Note_"
    assert identifier("3rd party") == "n3rd_party"
    assert viz.escape("a;b #1\nc") == "a#59;b #35;1<br/>c"


def test_sequence_diagram_arrows_notes_aliases_and_title() -> None:
    steps = [
        {"from": "client", "to": "payments API", "message": "POST /charges", "kind": "call"},
        {"from": "payments API", "to": "ledger", "message": "charge", "kind": "effect"},
        {"from": "payments API", "to": "client", "message": "201", "kind": "lost"},
        {"from": "client", "to": "bus", "message": "OrderCreated", "kind": "send"},
        {"from": "payments API", "to": "payments API", "message": "crashed", "kind": "crash"},
        {"from": "client", "to": "bus", "message": "retry; same key", "kind": "note"},
        {"from": "bus", "to": "client", "message": "ThrottlingException", "kind": "error"},
    ]
    source = sequence_diagram(steps, actors=["bus"], title="A run", aliases={"client": "mobile app"}).source
    assert source == "\n".join(
        [
            "---",
            'title: "A run"',
            "---",
            "sequenceDiagram",
            "    participant bus",
            "    participant client as mobile app",
            "    participant payments_API as payments API",
            "    participant ledger",
            "    client->>payments_API: POST /charges",
            "    payments_API->>ledger: charge",
            "    payments_API--xclient: 201",
            "    client-)bus: OrderCreated",
            "    Note over payments_API: ✖ crashed",
            "    Note over client,bus: retry#59; same key",
            "    bus-->>client: ThrottlingException",
        ]
    )
    assert "autonumber" in sequence_diagram(steps, autonumber=True).source
    with pytest.raises(ValueError, match="sender and a receiver"):
        sequence_diagram([{"from": "a", "message": "x"}])


def test_state_diagram_from_a_transition_log() -> None:
    log = [
        {"key": "k1", "from": "ABSENT", "to": "IN_PROGRESS", "reason": "claimed", "event": "claim"},
        {"key": "k2", "from": "ABSENT", "to": "IN_PROGRESS", "reason": "claimed", "event": "claim"},
        {"key": "k1", "from": "IN_PROGRESS", "to": "IN_PROGRESS", "reason": "409 in progress", "event": "refuse"},
        {"key": "k1", "from": "IN_PROGRESS", "to": "COMPLETED", "reason": "handler returned", "event": "complete"},
        {"key": "k1", "from": "COMPLETED", "to": "COMPLETED", "reason": "replayed", "event": "replay"},
        {"key": "k1", "from": "COMPLETED", "to": "COMPLETED", "reason": "replayed", "event": "replay"},
    ]
    assert state_diagram(log, key="k1", final=["COMPLETED"]).source == "\n".join(
        [
            "stateDiagram-v2",
            "    [*] --> ABSENT",
            "    ABSENT --> IN_PROGRESS: claimed",
            "    IN_PROGRESS --> IN_PROGRESS: 409 in progress",
            "    IN_PROGRESS --> COMPLETED: handler returned",
            "    COMPLETED --> COMPLETED: replayed x2",
            "    COMPLETED --> [*]",
        ]
    )
    everything = state_diagram(log, label="event", changes_only=True).source
    assert "    ABSENT --> IN_PROGRESS: claim x2" in everything
    assert "IN_PROGRESS --> IN_PROGRESS" not in everything


def test_state_diagram_accepts_tuples_objects_and_a_start_state() -> None:
    class T:
        def __init__(self, from_: str | None, to: str, reason: str) -> None:
            self.from_, self.to, self.reason = from_, to, reason

    source = state_diagram([(None, "in progress", "claim"), T("in progress", "done", "ok")]).source
    assert source == "\n".join(
        [
            "stateDiagram-v2",
            '    state "in progress" as in_progress',
            "    [*] --> in_progress: claim",
            "    in_progress --> done: ok",
        ]
    )
    assert "    [*] --> a" in state_diagram([("a", "b")], start="a").source
    assert "[*]" not in state_diagram([("a", "b")], start=None).source
    with pytest.raises(ValueError, match="target state"):
        state_diagram([{"from": "a", "to": None}])


# -- timeline --------------------------------------------------------------------------------------------------------
def test_timeline_has_one_lane_per_key_and_a_legend_per_kind() -> None:
    t = Trace()
    t.record("orders", "payments", "charge", key="o-1")
    t.effect("payments", "ledger", "charge", key="o-1")
    t.lost("payments", "orders", key="o-1")
    t.record("orders", "payments", "charge", key="o-2")
    t.note("orders", "no key")  # left out: no lane
    fig = t.timeline(title="attempts")
    ax = fig.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["o-1", "o-2"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["call", "effect", "lost"]
    assert ax.get_title() == "attempts" and ax.get_xlabel() == "logical step"
    offsets = ax.collections[0].get_offsets()
    assert [tuple(p) for p in offsets] == [(1.0, 0.0), (4.0, 1.0)]


def test_timeline_takes_dicts_and_frames_with_renamed_legend() -> None:
    rows = [{"order": "a", "t": 1, "what": "effect"}, {"order": "a", "t": 2, "what": "effect"}]
    fig = timeline(rows, lane="order", x="t", kind="what", legend={"effect": "card charged"})
    assert [x.get_text() for x in fig.axes[0].get_legend().get_texts()] == ["card charged"]
    import pandas as pd

    fig2 = timeline(pd.DataFrame(rows).set_index("t"), lane="order", x="t", kind="what")
    assert len(fig2.axes[0].collections[0].get_offsets()) == 2


def test_a_key_known_only_from_the_reply_tags_the_request_too(sqs_and_queue) -> None:  # type: ignore[no-untyped-def]
    sqs, queue = sqs_and_queue
    sqs.send_message(QueueUrl=queue.url, MessageBody='{"order": "o-9"}', MessageGroupId="g", MessageDeduplicationId="d")
    t = Trace()

    def order_of(op: str, params: dict, parsed: dict | None) -> str:
        messages = (parsed or {}).get("Messages", [])
        return messages[0]["Body"][11:14] if messages else ""

    t.instrument(sqs, "worker", key=order_of)
    sqs.receive_message(QueueUrl=queue.url)
    t.uninstrument()
    assert [(s.kind, s.key) for s in t] == [("call", "o-9"), ("reply", "o-9")]
    assert [s.label for s in t.view(key="o-9")] == ["ReceiveMessage", "1 message"]


def test_state_diagram_draws_a_path_over_the_whole_machine() -> None:
    machine = [
        ("ABSENT", "IN_PROGRESS", "claim"),
        ("IN_PROGRESS", "COMPLETED", "complete"),
        ("IN_PROGRESS", "ABSENT", "release"),
    ]
    path = [*machine[:1], machine[2], machine[0], ("IN_PROGRESS", "LOST", "crash")]
    assert state_diagram(machine, path=path, title="one key").lines[3:] == [
        "stateDiagram-v2",
        "    [*] --> ABSENT",
        "    ABSENT --> IN_PROGRESS: claim · step 1, 3",
        "    IN_PROGRESS --> COMPLETED: complete",
        "    IN_PROGRESS --> ABSENT: release · step 2",
        "    IN_PROGRESS --> LOST: crash · step 4",  # taken, though not in the machine: added
        f"    classDef taken {HIGHLIGHT_STYLE}",
        "    class ABSENT,IN_PROGRESS,LOST taken",
    ]
    marked = state_diagram([("a b", "c")], highlight=["a b"], highlight_class="now").lines
    assert marked[-2:] == [f"    classDef now {HIGHLIGHT_STYLE}", "    class a_b now"]
    assert "classDef" not in state_diagram(machine).source


def test_flowchart_nodes_groups_edges_classes_and_link_styles() -> None:
    items = [
        FlowNode("a", 'say "hi"'),
        FlowGroup("g", "both", (FlowNode("b", "left", "decision"), FlowNode("c", "right", "terminal"))),
    ]
    edges = [FlowEdge("a", "b"), FlowEdge("b", "c", "yes"), FlowEdge("a", "c", "catch #1", dashed=True)]
    classes = {"seen": HIGHLIGHT_STYLE, "bad": "fill:red"}
    chart = flowchart(items, edges, classes=classes, members={"seen": ["a", "b"]}, highlight_edges=[0, 1])
    assert chart.lines == [
        "flowchart TD",
        """    a["say 'hi'"]""",
        '    subgraph g ["both"]',
        '        b{"left"}',
        '        c(["right"])',
        "    end",
        "    a --> b",
        '    b -->|"yes"| c',
        '    a -.->|"catch #35;1"| c',
        f"    classDef seen {HIGHLIGHT_STYLE}",
        "    classDef bad fill:red",
        "    class a,b seen",
        f"    linkStyle 0,1 {TAKEN_EDGE_STYLE}",
    ]
