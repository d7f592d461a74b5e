"""Record who sent what to whom, so diagrams are drawn from what actually happened, never by hand.

A :class:`Trace` is an append-only list of :class:`Step`\\ s numbered in logical time (1, 2, 3...; no wall clock, so
a notebook's diagrams and tables are the same on every run). Three ways to fill it:

- by hand: ``trace.record("orders", "payments", "charge order-1", key="order-1")``;
- around a call: ``with trace.exchange("orders", "payments", "charge", key=k) as ex: ...; ex.reply = "receipt"``
  records the request, then the reply, or a lost response (:class:`helpers.instruments.faults.ResponseLost`), a crash
  (:class:`helpers.instruments.faults.WorkerCrashed`) or an error reply, whichever happened;
- from boto3: ``trace.instrument(client, actor="orders-service")`` records every API call the client makes (and its
  reply or error code) through botocore's event hooks.

Rendering lives in :mod:`.viz`; the shortcuts here are :meth:`Trace.sequence` (a Mermaid sequence diagram),
:meth:`Trace.frame` (a pandas table) and :meth:`Trace.timeline` (a matplotlib figure of steps per key).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from helpers.instruments import viz
from helpers.instruments.faults import ResponseLost, WorkerCrashed

#: Step kinds and what they mean (the Mermaid arrow for each is in :data:`helpers.instruments.viz.ARROWS`).
KINDS: dict[str, str] = {
    "call": "a request that expects an answer",
    "reply": "the answer to a request",
    "send": "a message sent without waiting for an answer (async)",
    "effect": "a side effect that matters to the business (a card charge)",
    "lost": "an answer that never arrived",
    "error": "an error answer (throttled, condition failed, ...)",
    "crash": "the actor crashed here",
    "note": "a remark over one or two actors",
}

SERVICE_NAMES: dict[str, str] = {
    "sqs": "SQS",
    "sns": "SNS",
    "dynamodb": "DynamoDB",
    "events": "EventBridge",
    "stepfunctions": "Step Functions",
    "lambda": "Lambda",
    "sts": "STS",
    "secretsmanager": "Secrets Manager",
    "iam": "IAM",
}

_trace_ids = itertools.count(1)


@dataclass(frozen=True)
class Step:
    """One thing that happened: ``step`` is its logical time, ``src -> dst`` who talked to whom."""

    step: int
    src: str
    dst: str
    label: str
    kind: str = "call"
    key: str = ""
    note: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "from": self.src,
            "to": self.dst,
            "message": self.label,
            "kind": self.kind,
            "key": self.key,
            "note": self.note,
        }


class Exchange:
    """The handle ``Trace.exchange`` yields: set ``reply`` (the answer's label) and ``reply_note`` if you like."""

    def __init__(self, request: Step) -> None:
        self.request = request
        self.reply = "ok"
        self.reply_note = ""


class Trace:
    """An ordered record of messages between actors. Thread-safe."""

    def __init__(self, name: str = "", *, actors: Iterable[str] = ()) -> None:
        self.name = name
        self.actors: list[str] = list(actors)
        self._steps: list[Step] = []
        self._lock = threading.Lock()
        self._id = next(_trace_ids)
        self._instrumented: list[tuple[Any, list[tuple[str, str]]]] = []

    # -- recording ------------------------------------------------------------------------------------------------
    def record(
        self,
        src: str,
        dst: str,
        label: str,
        *,
        kind: str = "call",
        key: Any = "",
        note: str = "",
        **data: Any,
    ) -> Step:
        """Append one step and return it. ``kind`` is one of :data:`KINDS`; ``key`` groups steps (an order id)."""
        if kind not in KINDS:
            raise ValueError(f"unknown step kind {kind!r}; use one of: {', '.join(KINDS)}")
        with self._lock:
            step = Step(len(self._steps) + 1, str(src), str(dst), str(label), kind, str(key), note, dict(data))
            self._steps.append(step)
        return step

    def reply(self, src: str, dst: str, label: str, **kw: Any) -> Step:
        return self.record(src, dst, label, kind="reply", **kw)

    def send(self, src: str, dst: str, label: str, **kw: Any) -> Step:
        return self.record(src, dst, label, kind="send", **kw)

    def effect(self, src: str, dst: str, label: str, **kw: Any) -> Step:
        return self.record(src, dst, label, kind="effect", **kw)

    def lost(self, src: str, dst: str, label: str = "response lost", **kw: Any) -> Step:
        return self.record(src, dst, label, kind="lost", **kw)

    def error(self, src: str, dst: str, label: str, **kw: Any) -> Step:
        return self.record(src, dst, label, kind="error", **kw)

    def crash(self, actor: str, label: str = "crashed", **kw: Any) -> Step:
        return self.record(actor, actor, label, kind="crash", **kw)

    def note(self, over: str | tuple[str, str], text: str, **kw: Any) -> Step:
        """A note over one actor, or over two (``over=("orders", "payments")``)."""
        src, dst = (over, over) if isinstance(over, str) else over
        return self.record(src, dst, text, kind="note", **kw)

    @contextmanager
    def exchange(self, src: str, dst: str, label: str, *, key: Any = "", note: str = "") -> Iterator[Exchange]:
        """Record a request, run the body as the receiver's work, then record what came back.

        ``ResponseLost`` becomes a lost answer (``--x``), ``WorkerCrashed`` a crash over the receiver, any other
        exception an error answer named after it; every exception is re-raised.
        """
        handle = Exchange(self.record(src, dst, label, kind="call", key=key, note=note))
        try:
            yield handle
        except ResponseLost:
            self.lost(dst, src, "response lost", key=key)
            raise
        except WorkerCrashed:
            self.crash(dst, "crashed before answering", key=key)
            raise
        except Exception as exc:
            self.error(dst, src, type(exc).__name__, key=key)
            raise
        else:
            self.reply(dst, src, handle.reply, key=key, note=handle.reply_note)

    # -- boto3 ---------------------------------------------------------------------------------------------------
    def instrument(
        self,
        client: Any,
        actor: str,
        *,
        target: str | Callable[[str, dict[str, Any]], str] | None = None,
        label: Callable[[str, dict[str, Any]], str | None] | None = None,
        reply: Callable[[str, dict[str, Any]], str | None] | None = None,
        key: Callable[[str, dict[str, Any], dict[str, Any] | None], Any] | None = None,
        skip: Iterable[str] = (),
    ) -> Any:
        """Record every API call ``client`` makes, as ``actor -> target``, and the reply (or error code).

        ``target`` defaults to the service (``SQS``, ``DynamoDB``...); ``label(operation, params)`` and
        ``reply(operation, parsed)`` override the default labels (return None to keep the default);
        ``key(operation, params, parsed_or_None)`` tags the steps; ``skip`` names operations not to record.
        Returns the client. Instrument a client of your own (``wb.client("sqs", retries={...})`` makes a fresh
        one): the hooks stay on the client until :meth:`uninstrument`. Instrumenting the same client again
        replaces the earlier settings (calls are never recorded twice).
        """
        self.uninstrument(client)
        service = client.meta.service_model.service_name
        default_target = SERVICE_NAMES.get(service, service)
        skipped = set(skip)
        uid = f"workbook-trace-{self._id}-{id(client)}"

        def dst_for(operation: str, params: dict[str, Any]) -> str:
            if callable(target):
                return target(operation, params)
            return target or default_target

        def key_for(operation: str, params: dict[str, Any], parsed: dict[str, Any] | None) -> str:
            return str(key(operation, params, parsed)) if key else ""

        def before(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            operation = model.name
            if operation in skipped:
                return
            text = (label(operation, params) if label else None) or call_label(operation, params)
            dst = dst_for(operation, params)
            step = self.record(actor, dst, text, kind="call", key=key_for(operation, params, None))
            context[uid] = (step, dst, params)

        def after(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            if uid not in context:
                return
            step, dst, params = context.pop(uid)
            operation = model.name
            tag = key_for(operation, params, parsed) or step.key
            if tag and not step.key:
                self._retag(step, tag)  # the key was only known from the reply (a ReceiveMessage, say)
            status = getattr(http_response, "status_code", 200)
            if status >= 300:
                code = parsed.get("Error", {}).get("Code") or f"HTTP {status}"
                self.record(dst, actor, code, kind="error", key=tag)
                return
            text = (reply(operation, parsed) if reply else None) or reply_label(operation, parsed)
            self.record(dst, actor, text, kind="reply", key=tag)

        def failed(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
            if uid not in context:
                return
            step, dst, _params = context.pop(uid)
            self.record(dst, actor, f"no answer: {type(exception).__name__}", kind="lost", key=step.key)

        hooks = [("before-parameter-build", before), ("after-call", after), ("after-call-error", failed)]
        registered = []
        for event, handler in hooks:
            name = event  # botocore events are hierarchical: "after-call" covers "after-call.sqs.SendMessage"
            client.meta.events.register(name, handler, unique_id=f"{uid}-{event}")
            registered.append((name, f"{uid}-{event}"))
        self._instrumented.append((client, registered))
        return client

    def _retag(self, step: Step, key: str) -> None:
        with self._lock:
            index = step.step - 1
            if index < len(self._steps) and self._steps[index] is step:
                self._steps[index] = replace(step, key=key)

    def uninstrument(self, client: Any | None = None) -> None:
        """Stop recording ``client`` (default: every client this trace instrumented)."""
        keep = []
        for c, registered in self._instrumented:
            if client is None or c is client:
                for name, uid in registered:
                    c.meta.events.unregister(name, unique_id=uid)
            else:
                keep.append((c, registered))
        self._instrumented = keep

    # -- reading ---------------------------------------------------------------------------------------------------
    @property
    def steps(self) -> list[Step]:
        with self._lock:
            return list(self._steps)

    def __len__(self) -> int:
        with self._lock:
            return len(self._steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def mark(self) -> int:
        """The current position, to draw only what happens next: ``m = trace.mark(); ...; trace.view(since=m)``."""
        return len(self)

    def view(
        self,
        *,
        key: Any | None = None,
        since: int = 0,
        until: int | None = None,
        actors: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
    ) -> Trace:
        """A copy holding only some steps (renumbered from 1, so a part of a notebook reads on its own).

        ``key`` keeps steps with that key (or a list of keys); ``since``/``until`` are :meth:`mark` positions;
        ``actors`` keeps steps whose both ends are among them; ``kinds`` keeps those kinds.
        """
        keys = None if key is None else ({str(key)} if isinstance(key, str | int) else {str(k) for k in key})
        wanted_actors = None if actors is None else set(actors)
        wanted_kinds = None if kinds is None else set(kinds)
        chosen = self.steps[since:until]
        out = Trace(self.name, actors=self.actors)
        for s in chosen:
            if keys is not None and s.key not in keys:
                continue
            if wanted_actors is not None and not {s.src, s.dst} <= wanted_actors:
                continue
            if wanted_kinds is not None and s.kind not in wanted_kinds:
                continue
            out.record(s.src, s.dst, s.label, kind=s.kind, key=s.key, note=s.note, **s.data)
        return out

    def count(
        self,
        *,
        kind: str | None = None,
        src: str | None = None,
        dst: str | None = None,
        key: Any | None = None,
        label: str | None = None,
    ) -> int:
        """How many steps match (``label`` matches a prefix): e.g. round trips an actor made to DynamoDB."""
        return sum(
            1
            for s in self.steps
            if (kind is None or s.kind == kind)
            and (src is None or s.src == src)
            and (dst is None or s.dst == dst)
            and (key is None or s.key == str(key))
            and (label is None or s.label.startswith(label))
        )

    def keys(self) -> list[str]:
        """The keys seen, in order of first appearance."""
        return list(dict.fromkeys(s.key for s in self.steps if s.key))

    def rows(self) -> list[dict[str, Any]]:
        return [s.as_row() for s in self.steps]

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()

    # -- rendering -------------------------------------------------------------------------------------------------
    def frame(self) -> Any:
        """The steps as a pandas DataFrame (step, from, to, message, kind, key, note), indexed by step."""
        import pandas as pd

        columns = ["step", "from", "to", "message", "kind", "key", "note"]
        return pd.DataFrame(self.rows(), columns=columns).set_index("step")

    def sequence(self, *, title: str | None = None, actors: Iterable[str] | None = None, **kw: Any) -> viz.Mermaid:
        """A Mermaid sequence diagram of the steps, participants in the order given, then as they appear."""
        return viz.sequence_diagram(
            self.steps, actors=list(actors) if actors is not None else self.actors, title=title, **kw
        )

    def timeline(self, **kw: Any) -> Any:
        """A matplotlib timeline: one lane per key, one marker per step, x = logical step (see viz.timeline)."""
        return viz.timeline(self.rows(), **kw)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"Trace{name}({len(self)} steps)"


# -- default labels for boto3 calls -----------------------------------------------------------------------------------
def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call_label(operation: str, params: Mapping[str, Any]) -> str:
    """A short, deterministic description of an API request (no bodies, no handles)."""
    extras = []
    if operation in ("SendMessage", "Publish"):
        if params.get("MessageDeduplicationId"):
            extras.append(f"dedup id {_short(params['MessageDeduplicationId'])}")
    elif operation == "SendMessageBatch":
        extras.append(f"{len(params.get('Entries', []))} messages")
    elif operation == "StartExecution":
        if params.get("name"):
            extras.append(f"name {_short(params['name'])}")
    elif operation == "PutEvents":
        extras.append(f"{len(params.get('Entries', []))} event" + ("s" if len(params.get("Entries", [])) != 1 else ""))
    elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
        if params.get("ConditionExpression"):
            extras.append(f"if {_short(params['ConditionExpression'], 48)}")
    elif operation == "TransactWriteItems":
        extras.append(f"{len(params.get('TransactItems', []))} items")
    return f"{operation} ({', '.join(extras)})" if extras else operation


def reply_label(operation: str, parsed: Mapping[str, Any]) -> str:
    """A short description of a successful reply."""
    if operation == "ReceiveMessage":
        n = len(parsed.get("Messages", []))
        return f"{n} message" + ("" if n == 1 else "s")
    if operation in ("SendMessage", "Publish") and parsed.get("MessageId"):
        return f"MessageId {parsed['MessageId']}"
    if operation == "PutEvents":
        ids = [e.get("EventId", e.get("ErrorCode", "?")) for e in parsed.get("Entries", [])]
        return "EventId " + ", ".join(ids) if len(ids) == 1 else f"{len(ids)} EventIds"
    if operation == "StartExecution" and parsed.get("executionArn"):
        return f"execution {parsed['executionArn'].rsplit(':', 1)[-1]}"
    if operation == "GetItem":
        return "item" if "Item" in parsed else "no item"
    return "ok"
