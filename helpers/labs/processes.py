"""The learner's code in processes of its own: a worker restarted after a crash, a second instance of an endpoint.

Why processes, and why ``fork``: a property such as "charged once, whatever crashes" is only proven when the worker
after a crash shares no memory with the one before, and "one claim wins" only when two workers really run at once
without a Python lock in common. Threads in the notebook's process share every module-level set, dict and lock, so a
check run in threads passes code that is safe only inside one process. A forked child starts from the notebook's
state at the moment of the fork (the learner's functions, the objects their cells built) and from then on shares
nothing with its parent or its siblings: what one worker remembers, the next cannot see. That is what a restarted or
a second process would have, without asking the learner to put their code in a file. (A fresh interpreter is needed
only where the interpreter itself must differ, e.g. Python's per-process ``hash()`` seed: see
:mod:`helpers.labs.fresh`.)

Hygiene in the child, done before the learner's code runs:

- every HTTP connection inherited from the parent is left unused (a socket shared by two processes would mix their
  requests and answers); the child opens its own;
- its output is captured (a child must not write to the notebook's streams) and sent to the parent with each answer;
- the ledger's charge-id counter starts at a random point of its own, so two children never make the same id;
- every AWS call goes through a :class:`Gate` the check installs: it sees the call before and after it is made, may
  hold it (a barrier that forces two workers' reads before either one's writes to a store) and may end the process
  at once (``os._exit``: a crash that no ``except`` can swallow).

The parent talks to each child over a pipe (:class:`Child` and :class:`Channel`); every wait on either side is
bounded, and the parent kills and reaps every child it started, also when the learner's code raises or hangs.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing import Pipe as _pipe
from multiprocessing import connection
from typing import Any, Protocol

#: The exit status of a child the check crashed on purpose.
CRASH_EXIT = 86
#: Operations that only read; every other AWS operation counts as a write.
READ_PREFIXES = ("Get", "Describe", "List", "Query", "Scan", "BatchGet", "TransactGet", "Receive", "Head")
#: Services whose writes change what a later read sees: a record of the learner's, or the charge itself.
STORES = ("dynamodb", "s3")


class ProcessesUnavailable(RuntimeError):
    """This platform cannot fork: the check cannot run its workers as processes."""


class LearnerTimeout(TimeoutError):
    """The learner's function did not return in time (it may still be running, in a thread the check gave up on)."""


def call_bounded(fn: Callable[..., Any], *args: Any, timeout: float, what: str) -> Any:
    """``fn(*args)`` in the notebook's process, given up on after ``timeout`` seconds with :class:`LearnerTimeout`.

    For learner functions a check calls in its own process (a pattern factory, a key function). A thread cannot be
    killed: one that hangs is left behind as a daemon, doing nothing the check waits for; the check goes on and
    reports the timeout. (Code that runs in a child process is killed with it instead.)
    """
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, name=f"lab-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise LearnerTimeout(f"{what} did not return within {timeout:g} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


# -- what the gate sees -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AwsCall:
    """One AWS API call the learner's code makes (in a child), as botocore is about to send it."""

    service: str
    operation: str
    params: Mapping[str, Any]

    @property
    def writes(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)

    @property
    def writes_a_store(self) -> bool:
        """A write to a data store (DynamoDB, S3): what a barrier "reads before writes" holds back. An SQS call
        (changing a message's visibility, sending one) changes no record a duplicate could read."""
        return self.writes and self.service in STORES

    @property
    def conditional(self) -> bool:
        """Does the call carry a condition (a conditional write, or a transaction with a condition in it)?"""
        if "ConditionExpression" in self.params or "Expected" in self.params:
            return True
        for item in self.params.get("TransactItems", []) or []:
            for kind, body in item.items():
                if kind == "ConditionCheck" or (isinstance(body, Mapping) and "ConditionExpression" in body):
                    return True
        return False

    def items_for(self, table: str) -> list[Mapping[str, Any]]:
        """The items (or keys, for an update) this call writes to ``table``: how a check finds a charge."""
        if self.service != "dynamodb" or not self.writes:
            return []
        found: list[Mapping[str, Any]] = []
        if self.params.get("TableName") == table:
            found.append(self.params.get("Item") or self.params.get("Key") or {})
        for item in self.params.get("TransactItems", []) or []:
            for kind in ("Put", "Update"):
                body = item.get(kind)
                if isinstance(body, Mapping) and body.get("TableName") == table:
                    found.append(body.get("Item") or body.get("Key") or {})
        for request in (self.params.get("RequestItems") or {}).get(table, []) or []:
            put = request.get("PutRequest") if isinstance(request, Mapping) else None
            if isinstance(put, Mapping):
                found.append(put.get("Item") or {})
        return found

    def tables_written(self) -> set[str]:
        """Every DynamoDB table this call writes to."""
        if self.service != "dynamodb" or not self.writes:
            return set()
        tables = {str(self.params["TableName"])} if "TableName" in self.params else set()
        for item in self.params.get("TransactItems", []) or []:
            for body in item.values():
                if isinstance(body, Mapping) and "TableName" in body:
                    tables.add(str(body["TableName"]))
        tables |= {str(t) for t in (self.params.get("RequestItems") or {})}
        return tables

    def strings_for(self, table: str, attribute: str) -> list[str]:
        """The string values of ``attribute`` in what this call writes to ``table`` (e.g. the orders it charges)."""
        values = []
        for item in self.items_for(table):
            value = item.get(attribute) if isinstance(item, Mapping) else None
            if isinstance(value, Mapping) and "S" in value:
                values.append(str(value["S"]))
        return values

    def summary(self) -> str:
        return f"{self.service}:{self.operation}{' (conditional)' if self.conditional else ''}"


class Gate(Protocol):
    """Sees every AWS call of a child: ``before`` may hold it or end the process; ``after`` learns how it went."""

    def before(self, call: AwsCall) -> None: ...

    def after(self, call: AwsCall, ok: bool) -> None: ...


# -- the child's end of the pipe ----------------------------------------------------------------------------------
@dataclass
class Message:
    kind: str
    body: Any = None
    ask: int = 0  # an ask the parent must answer (0: none)


class Channel:
    """The child's end: ``ask`` the parent and wait (bounded) for the answer, ``tell`` it things, take ``jobs``.

    Safe to use from many threads of the child (an endpoint serves requests on several). When the parent goes away
    (the pipe closes), the child ends at once: it must never outlive the check that started it.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._send_lock = threading.Lock()
        self._asks = itertools.count(1)
        self._answers: dict[int, Any] = {}
        self._waiting: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.jobs: queue.Queue[Any] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="lab-channel", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone or closed us: nothing left to do
            if message.kind == "answer":
                ask, value = message.body
                with self._lock:
                    self._answers[ask] = value
                    event = self._waiting.get(ask)
                if event is not None:
                    event.set()
            elif message.kind == "stop":
                os._exit(0)
            else:
                self.jobs.put(message)

    def send(self, message: Message) -> None:
        with self._send_lock:
            self._conn.send(message)

    def tell(self, kind: str, body: Any = None) -> None:
        self.send(Message(kind, body))

    def ask(self, kind: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        """Ask the parent and wait for its answer; None when it does not answer within ``timeout``."""
        ask = next(self._asks)
        event = threading.Event()
        with self._lock:
            self._waiting[ask] = event
        self.send(Message(kind, body, ask))
        event.wait(timeout)
        with self._lock:
            self._waiting.pop(ask, None)
            return self._answers.pop(ask, None)

    def next_job(self, timeout: float | None = None) -> Message | None:
        try:
            return self.jobs.get(timeout=timeout)
        except queue.Empty:
            return None


# -- the parent's handle on a child ---------------------------------------------------------------------------------
@dataclass
class Child:
    """One forked process, from the parent's side. ``exitcode`` is set once it has ended and been reaped."""

    name: str
    pid: int
    conn: Any = field(repr=False)
    exitcode: int | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        return self.exitcode is None

    def post(self, kind: str, body: Any = None) -> bool:
        """Send a job or a notice; False when the child is already gone."""
        try:
            self.conn.send(Message(kind, body))
        except (OSError, EOFError, ValueError):
            return False
        return True

    def answer(self, ask: int, value: Any) -> bool:
        return self.post("answer", (ask, value))

    def reap(self, *, wait: float = 0.0) -> int | None:
        """Collect the exit status if the child has ended (waiting up to ``wait`` seconds)."""
        if self.exitcode is not None:
            return self.exitcode
        deadline = time.monotonic() + wait
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.exitcode = -1
                break
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        with contextlib.suppress(OSError):
            self.conn.close()
        return self.exitcode

    def kill(self) -> None:
        """End the child now (SIGKILL) and reap it. Safe to call on a child that has already ended."""
        if self.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.reap(wait=5.0)


def receive(children: Iterable[Child], timeout: float) -> list[tuple[Child, Message]]:
    """Messages from any of ``children`` within ``timeout``; a child that ended yields ``Message("exit", code)``."""
    live: dict[Any, Child] = {child.conn: child for child in children if child.alive}
    if not live:
        time.sleep(timeout)
        return []
    got: list[tuple[Child, Message]] = []
    for ready in connection.wait(list(live), timeout):
        child = live[ready]
        conn: Any = ready
        try:
            while True:
                got.append((child, conn.recv()))
                if not conn.poll():
                    break
        except (EOFError, OSError):
            got.append((child, Message("exit", child.reap(wait=2.0))))
    return got


# -- starting a child -------------------------------------------------------------------------------------------------
def can_fork() -> bool:
    return hasattr(os, "fork")


def start(name: str, main: Callable[[Channel], None]) -> Child:
    """Fork a child that runs ``main(channel)`` and then ends; returns the parent's handle on it."""
    if not can_fork():
        raise ProcessesUnavailable(
            "this check runs your code in processes of its own (os.fork), which this platform does not have: "
            "run the lab on Linux, macOS or WSL"
        )
    with contextlib.suppress(Exception):  # macOS: ask for the proxy settings before the fork, never in the child
        import urllib.request

        urllib.request.getproxies()
    parent_end, child_end = _pipe(duplex=True)
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: "fork() in a multi-threaded process"
        pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            parent_end.close()
            _become_independent()
            main(Channel(child_end))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    child_end.close()
    return Child(name, pid, parent_end)


_inherited: list[Any] = []  # the parent's connections, kept open and unused in a child
_captured = io.StringIO()


def captured_output() -> str:
    """What the child's code printed since the last call (then forgotten)."""
    text = _captured.getvalue()
    _captured.seek(0)
    _captured.truncate()
    return text


def _become_independent() -> None:
    """Run first in a child: own output, own connections, own charge ids."""
    sys.stdout = sys.stderr = _captured
    with contextlib.suppress(ImportError):
        from urllib3.connectionpool import HTTPConnectionPool

        original = HTTPConnectionPool._get_conn
        me = os.getpid()

        def _get_conn(self: Any, timeout: float | None = None) -> Any:
            conn = original(self, timeout)
            if getattr(conn, "_lab_pid", None) != me:
                if getattr(conn, "sock", None) is not None:
                    _inherited.append(conn)  # the parent's socket: keep it open, never use it here
                    conn = self._new_conn()
                setattr(conn, "_lab_pid", me)  # noqa: B010 - an attribute urllib3 does not declare
            return conn

        HTTPConnectionPool._get_conn = _get_conn  # type: ignore[method-assign]


def install_gate(gate: Gate) -> None:
    """In a child: send every AWS call of every botocore client (made before or after this) through ``gate``."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        call = AwsCall(self.meta.service_model.service_name, operation_name, api_params)
        gate.before(call)
        try:
            result = original(self, operation_name, api_params)
        except BaseException:
            gate.after(call, False)
            raise
        gate.after(call, True)
        return result

    BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]


@contextlib.contextmanager
def later_by(seconds: float) -> Iterator[None]:
    """In a child (a worker, an instance), for one job: the wall clock (time.time, time.time_ns) runs ``seconds`` later
    (the job runs as if it came that much later; time.monotonic is left alone, so every timeout still holds).
    The clock is the whole process's: only for a job that runs alone in its process."""
    real_time, real_time_ns = time.time, time.time_ns
    if seconds:
        time.time = lambda: real_time() + seconds  # type: ignore[assignment]
        time.time_ns = lambda: real_time_ns() + int(seconds * 1e9)  # type: ignore[assignment]
    try:
        yield
    finally:
        time.time, time.time_ns = real_time, real_time_ns  # type: ignore[assignment]


def crash(channel: Channel, what: Mapping[str, Any]) -> None:
    """End this child at once, as a killed process ends: no ``except``, ``finally`` or clean-up runs."""
    with contextlib.suppress(Exception):
        channel.tell("crash", dict(what))
    os._exit(CRASH_EXIT)


@contextlib.contextmanager
def children() -> Any:
    """A list of children that are all killed and reaped when the block ends, however it ends."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in started:
            child.post("stop")
        for child in started:
            if child.reap(wait=0.5) is None:
                child.kill()
