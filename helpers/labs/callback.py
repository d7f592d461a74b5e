"""Lab 02's check: a task-token callback that gives up on a dead or stuck worker, cancels the order, and still pays a
worker that is slow but alive.

The check deploys the learner's state machine and runs five orders through it at once, each with a payments worker
of its own behaviour. One dispatcher takes the payment requests from the queue and hands each to the worker of *its*
order (by ``orderId``), so a ``Retry`` that sends a request again reaches the same kind of worker and never another
order's: a correct solution with retries passes, whatever the order of the queue.

==============  ========================================================  ========================================
worker          what it does with every request it takes                  what the workflow must make of it
==============  ========================================================  ========================================
``dead``        nothing, ever (it crashed)                                 given up on within ``dead_deadline_s``,
                                                                           the order CANCELLED (Catch)
``silent``      works ``job_s`` without a heartbeat, then answers (late)   given up on too, CANCELLED: only a
                                                                           HeartbeatSeconds shorter than the job
                                                                           catches silence (a TimeoutSeconds long
                                                                           enough for the slow worker does not)
``slow``        a heartbeat every ``heartbeat_every_s``, answers after     PAID: the heartbeat keeps it alive
                ``job_s``
``stuck``       a heartbeat every ``heartbeat_every_s``, never answers     given up on within ``stuck_deadline_s``,
                                                                           CANCELLED: only a TimeoutSeconds ends it
``declines``    SendTaskFailure PaymentDeclined                            CANCELLED
==============  ========================================================  ========================================

Every wait is bounded; what still runs at the end is stopped (executions, worker threads).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws.resources import Resources
from helpers.labs.processes import call_bounded
from helpers.labs.report import Report
from helpers.labs.scratch import scratch

LAB = "Lab 02 · the callback that waits forever"
BEHAVIOURS = ("dead", "silent", "slow", "stuck", "declines")
_runs = itertools.count(1)


@dataclass(frozen=True)
class CallbackScenario:
    """The check's numbers: the helper's, scaled down from minutes to seconds (HeartbeatSeconds are whole seconds)."""

    dead_deadline_s: float = 7.0  # a worker that never answers must be given up on within this, retries included
    job_s: float = 7.0  # the slow and the silent worker work this long
    heartbeat_every_s: float = 1.0  # the slow and the stuck worker send a heartbeat this often
    stuck_deadline_s: float = 22.0  # a worker that heartbeats forever must be given up on within this
    grace_s: float = 1.0  # what the emulator may add to a deadline


def _has_timeout(definition: Any) -> bool:
    """Does any state (or the machine) carry a TimeoutSeconds? Without one nothing ends a heartbeating worker."""
    if isinstance(definition, dict):
        if "TimeoutSeconds" in definition or "TimeoutSecondsPath" in definition:
            return True
        return any(_has_timeout(v) for v in definition.values())
    if isinstance(definition, list):
        return any(_has_timeout(v) for v in definition)
    return False


class _Workers:
    """The payments workers: one dispatcher thread takes requests and starts the behaviour of each one's order."""

    def __init__(self, wb: Any, queue_url: str, behaviour_of: dict[str, str], s: CallbackScenario) -> None:
        self.sqs, self.sfn = wb.client("sqs"), wb.client("stepfunctions")
        self.queue_url, self.behaviour_of, self.s = queue_url, behaviour_of, s
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.requests: dict[str, int] = dict.fromkeys(behaviour_of, 0)
        self.paid: set[str] = set()  # the orders whose worker's SendTaskSuccess was accepted
        self.strangers = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self._spawn(self._dispatch, "lab-dispatcher")

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self.threads.append(thread)
        thread.start()

    def _dispatch(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                for message in reply.get("Messages", []):
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    request = json.loads(message["Body"])
                    behaviour = self.behaviour_of.get(str(request.get("orderId")))
                    if behaviour is None or "taskToken" not in request:
                        self.strangers += 1
                        continue
                    self.requests[str(request["orderId"])] += 1
                    self._spawn(self._work, f"lab-{behaviour}", behaviour, request)

    def _call(self, fn: Callable[..., Any], **kwargs: Any) -> bool:
        """A call to Step Functions; False when it is refused (the task had ended, or moto's heartbeat quirk)."""
        try:
            fn(**kwargs)
        except (ClientError, Exception):
            return False
        return True

    def _work(self, behaviour: str, request: dict[str, Any]) -> None:
        token, s = request["taskToken"], self.s
        if behaviour == "declines":
            self._call(self.sfn.send_task_failure, taskToken=token, error="PaymentDeclined", cause="card declined")
        elif behaviour == "silent":
            if not self.stop.wait(s.job_s) and self._call(
                self.sfn.send_task_success, taskToken=token, output=json.dumps({"captured": 20})
            ):
                self.paid.add(str(request["orderId"]))
        elif behaviour in ("slow", "stuck"):
            started = time.monotonic()
            while not self.stop.wait(s.heartbeat_every_s):
                if behaviour == "slow" and time.monotonic() - started >= s.job_s:
                    if self._call(self.sfn.send_task_success, taskToken=token, output=json.dumps({"captured": 20})):
                        self.paid.add(str(request["orderId"]))
                    return
                self._call(self.sfn.send_task_heartbeat, taskToken=token)
        # "dead": nothing, ever

    def close(self) -> None:
        self.stop.set()
        with self._lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(timeout=3)


def check_callback(
    wb: Any, make_definition: Callable[[str, str], dict[str, Any]], scenario: CallbackScenario | None = None
) -> Report:
    """Lab 02: dead and silent workers are given up on in seconds and their orders cancelled, a stuck one within a
    bound, a declined payment cancels, a slow worker that sends heartbeats is paid.

    ``make_definition(queue_url, orders_table)`` returns the ASL of the payment workflow: a
    ``sqs:sendMessage.waitForTaskToken`` task whose message carries ``orderId``, ``amount`` and ``taskToken``, and
    which writes the order's ``status`` (``PAID`` / ``CANCELLED``) to the orders table.
    """
    with scratch(wb) as resources:
        return _check_callback(wb, resources, make_definition, scenario)


def _check_callback(
    wb: Any,
    resources: Resources,
    make_definition: Callable[[str, str], dict[str, Any]],
    scenario: CallbackScenario | None,
) -> Report:
    s = scenario or CallbackScenario()
    report = Report(LAB)
    run = next(_runs)
    queue = resources.ensure_queue(f"payment-requests-r{run}")
    table = resources.ensure_table("orders", partition_key="order_id")
    ddb, sfn = wb.client("dynamodb"), wb.client("stepfunctions")
    try:
        definition = call_bounded(make_definition, queue.url, table, timeout=10, what="payment_workflow")
        arn = resources.ensure_state_machine(f"payment-r{run}", definition)
    except Exception as exc:
        report.expect(
            "the definition is accepted",
            False,
            observed=f"{type(exc).__name__}: {str(exc)[:120]}",
            hint="CreateStateMachine refused it: check every Next names a state, and the JSON shape of the ASL",
            key="accepted",
        )
        return report.verdict()

    # Opaque order ids and execution names, started in a random order: nothing in the input, the context object or
    # the order of the executions tells a definition which worker an order will meet.
    shuffled = random.sample(BEHAVIOURS, len(BEHAVIOURS))
    orders = {f"r{run}-{uuid.uuid4().hex[:12]}": behaviour for behaviour in shuffled}
    by_behaviour = {b: o for o, b in orders.items()}
    workers = _Workers(wb, queue.url, orders, s)
    executions: dict[str, str] = {}
    ended: dict[str, float] = {}
    stuck_can_end = _has_timeout(definition)
    limit = {b: s.dead_deadline_s + s.grace_s for b in BEHAVIOURS}
    limit["slow"] = limit["silent"] = s.job_s + s.dead_deadline_s + s.grace_s
    limit["stuck"] = s.stuck_deadline_s + s.grace_s if stuck_can_end else 0.0  # nothing can end it: do not wait
    started = time.monotonic()
    try:
        workers.start()
        for order, behaviour in orders.items():
            name = order
            executions[behaviour] = sfn.start_execution(
                stateMachineArn=arn, name=name, input=json.dumps({"orderId": order, "amount": 20})
            )["executionArn"]
        while len(ended) < len(executions):
            elapsed = time.monotonic() - started
            for behaviour, execution in executions.items():
                if behaviour in ended:
                    continue
                described = sfn.describe_execution(executionArn=execution)
                if described["status"] != "RUNNING":
                    duration = described["stopDate"] - described["startDate"]
                    ended[behaviour] = duration.total_seconds()
                elif elapsed > limit[behaviour]:
                    ended[behaviour] = float("inf")  # still running: stopped below
            time.sleep(0.2)
    finally:
        for behaviour, execution in executions.items():
            if ended.get(behaviour, float("inf")) == float("inf"):
                with contextlib.suppress(Exception):
                    sfn.stop_execution(executionArn=execution, error="LabCheck", cause="still waiting")
        workers.close()

    def status(behaviour: str) -> str:
        order = by_behaviour[behaviour]
        item = ddb.get_item(TableName=table, Key={"order_id": {"S": order}}, ConsistentRead=True).get("Item")
        return item["status"]["S"] if item else "no status"

    def took(behaviour: str) -> str:
        seconds = ended.get(behaviour, float("inf"))
        return "still RUNNING (stopped by the check)" if seconds == float("inf") else f"ended after {seconds:.1f} s"

    def within(behaviour: str, deadline: float) -> bool:
        return ended.get(behaviour, float("inf")) <= deadline + s.grace_s

    no_heartbeat = (
        f"give the task a HeartbeatSeconds (the longest silence you accept: more than the {s.heartbeat_every_s:g} s "
        "between heartbeats, much less than the job) and a TimeoutSeconds; the States Language sets neither by default"
    )
    report.expect(
        f"a dead worker (it never answers) is given up on within {s.dead_deadline_s:g} s",
        within("dead", s.dead_deadline_s),
        observed=took("dead"),
        hint=no_heartbeat,
        key="dead_given_up",
    )
    report.expect(
        "... and its order is cancelled (the compensation path)",
        status("dead") == "CANCELLED",
        observed=f"order {status('dead')}",
        hint="add a Catch on the task (ErrorEquals States.ALL, or States.Timeout) whose Next writes CANCELLED",
        key="dead_cancelled",
    )
    report.expect(
        f"a worker silent for {s.job_s:g} s (no heartbeat) is given up on too, its order cancelled",
        status("silent") == "CANCELLED",
        observed=f"execution {took('silent')}, order {status('silent')}",
        hint=f"a TimeoutSeconds long enough for the slow worker ({s.job_s:g} s) lets a silent one run as long: only a "
        f"HeartbeatSeconds shorter than the job (more than {s.heartbeat_every_s:g} s) notices silence early",
        key="silent",
    )
    report.expect(
        "a declined payment cancels the order",
        status("declines") == "CANCELLED",
        observed=f"execution {took('declines')}, order {status('declines')}",
        hint="SendTaskFailure makes the task fail with the worker's error: the same Catch must handle it",
        key="declined",
    )
    slow_paid = status("slow") == "PAID" and by_behaviour["slow"] in workers.paid
    report.expect(
        f"a slow worker (a heartbeat every {s.heartbeat_every_s:g} s, done after {s.job_s:g} s) is paid",
        slow_paid,
        observed=f"execution {took('slow')}, order {status('slow')}"
        + ("" if slow_paid or status("slow") != "PAID" else ", but the worker's SendTaskSuccess was never accepted"),
        hint=f"HeartbeatSeconds must be longer than the gap between heartbeats ({s.heartbeat_every_s:g} s), "
        f"TimeoutSeconds longer than the whole job ({s.job_s:g} s)"
        if status("slow") != "PAID"
        else "the order was marked PAID without the worker's answer: only the payment task's success (the worker's "
        "SendTaskSuccess) may lead to Payment captured",
        key="slow",
    )
    report.expect(
        f"a stuck worker (heartbeats, never an answer) is given up on within {s.stuck_deadline_s:g} s, order cancelled",
        within("stuck", s.stuck_deadline_s) and status("stuck") == "CANCELLED",
        observed=(took("stuck") if stuck_can_end else "no TimeoutSeconds anywhere: nothing can end it")
        + f", order {status('stuck')}",
        hint="heartbeats only prove the worker is alive, not that it will ever finish: a TimeoutSeconds (longer "
        f"than the {s.job_s:g} s job) bounds the whole payment, retries included",
        key="stuck",
    )
    unasked = [b for b in BEHAVIOURS if not workers.requests[by_behaviour[b]]]
    report.expect(
        "every order's payment request reaches the payments queue",
        not unasked,
        observed="all five asked" if not unasked else f"never asked: the {', the '.join(unasked)} worker's order",
        hint="every order must go through the sqs:sendMessage.waitForTaskToken task (orderId, amount, taskToken in "
        "the message): an order decided without asking the payments worker was never paid nor refused",
        key="asked",
    )
    return report.verdict()
