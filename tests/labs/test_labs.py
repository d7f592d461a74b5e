"""Labs: the notebooks match their one source, and every check fails on broken code and passes on fixed code.

The checks are run directly on the lab's own code cells (cut from ``lab.md`` by tools/labgen.py), altered on purpose:
a deliberately broken solution must fail, a deliberately fixed starter must pass. nbval proves the same on the whole
notebooks (`make test`); this is the fast, targeted half.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from helpers.labs import LabCheckFailed, Report

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import labgen  # noqa: E402

LABS = labgen.lab_dirs()
LAB01 = ROOT / "labs" / "01_double_charging_consumer"
LAB02 = ROOT / "labs" / "02_idempotent_payment_endpoint"


# -- the generator ----------------------------------------------------------------------------------------------
def test_there_are_labs() -> None:
    assert LAB01 in LABS and LAB02 in LABS


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name)
def test_committed_notebooks_match_their_source(lab: Path) -> None:
    assert labgen.drift(lab) == []


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.name)
def test_starter_stores_the_check_error_and_solution_passes(lab: Path) -> None:
    """nbval can only prove "fails for the stated reason" if the starter stores that error (and the solution none)."""
    for variant in labgen.VARIANTS:
        nb = nbformat.read(lab / f"{variant}.ipynb", as_version=4)
        checks = [c for c in nb.cells if labgen.CHECK_TAG in c.metadata.get("tags", [])]
        assert checks, f"{lab.name}/{variant}: no check cell"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.execution_count is not None, f"{lab.name}/{variant}: not executed (labgen --execute)"
        errors = [o for c in checks for o in c.outputs if o.output_type == "error"]
        if variant == "starter":
            assert all(labgen.RAISES in c.metadata["tags"] for c in checks)
            assert [e.ename for e in errors] == ["LabCheckFailed"] * len(checks)
            assert all("expectations missed. Fix first:" in e.evalue for e in errors)
        else:
            assert not errors and all(labgen.RAISES not in c.metadata["tags"] for c in checks)


def test_marked_blocks_are_cut_per_variant(tmp_path: Path) -> None:
    source = tmp_path / "lab.md"
    source.write_text(
        "# T\n\n<!-- starter -->\nstarter only\n<!-- end -->\n+++\nshared\n\n"
        "```python\nx = 1\n# [solution]\ny = 2\n# [starter]\ny = None  # TODO\n# [end]\n```\n\n"
        "```python check\nassert y == 2\n```\n\n```python solution\nprint('answers')\n```\n"
    )
    starter, solution = (labgen.build(source, v) for v in labgen.VARIANTS)
    assert [c.source for c in starter.cells] == [
        "# T\n\nstarter only",
        "shared",
        "x = 1\ny = None  # TODO",
        "assert y == 2",
    ]
    assert [c.source for c in solution.cells] == ["# T", "shared", "x = 1\ny = 2", "assert y == 2", "print('answers')"]
    assert starter.cells[3].metadata["tags"] == ["lab-check", "raises-exception"]
    assert solution.cells[3].metadata["tags"] == ["lab-check"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```python\n# [solution]\nx = 1\n```\n", "never closed with [end]"),
        ("```python\n# [end]\n```\n", "[end] without [solution]"),
        ("```python\nx = 1\n", "code block never closed"),
        ("```python\nx = 1\n```\n", "needs at least one ```python check cell"),
        ("```python tests\nx = 1\n```\n", "unknown cell kind"),
    ],
)
def test_malformed_sources_are_refused_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    source = tmp_path / "lab.md"
    source.write_text(text)
    with pytest.raises(labgen.LabSourceError, match=message.replace("[", r"\[").replace("(", r"\(")):
        labgen.build(source, "solution")


# -- the checks on altered copies -------------------------------------------------------------------------------
def lab_code(lab: Path, variant: str, prefix: str, edit: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
    """Run the lab's code cells up to its check (not the check, not the cleanup) with ``edit`` applied."""
    nb = labgen.build(lab / labgen.SOURCE, variant)
    namespace: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if labgen.CHECK_TAG in cell.metadata.get("tags", []):
            break
        code = cell.source.replace(f'setup("lab{lab.name[:2]}")', f'setup("{prefix}")')
        exec(compile(edit(code), f"{lab.name}/{variant}", "exec"), namespace)
    assert namespace["wb"].prefix == prefix
    return namespace


def missed(run: Callable[[], Report]) -> list[str]:
    try:
        run()
    except LabCheckFailed as failed:
        assert failed.report is not None
        return [e.what for e in failed.report.missed]
    return []


def stored_error(lab: Path) -> str:
    nb = nbformat.read(lab / "starter.ipynb", as_version=4)
    return next(o.evalue for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error")


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(code: str) -> str:
        return code.replace(old, new) if old in code else code

    return edit


def check01(ns: dict[str, Any]) -> Callable[[], Report]:
    return lambda: ns["check_double_charging_consumer"](ns["wb"], ns["ledger"], ns["make_consumer"])


CRASH = "a crash between charge and delete does not charge again"
SENT_TWICE = "an order the producer sent twice is charged once"


@pytest.fixture
def lab01(backend):  # type: ignore[no-untyped-def]
    made: list[dict[str, Any]] = []

    def make(variant: str, edit: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
        made.append(lab_code(LAB01, variant, "t-lab01", edit))
        return made[-1]

    yield make
    for ns in made:
        ns["wb"].cleanup()


def test_lab01_starter_fails_with_the_stored_error_and_solution_passes(lab01, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LabCheckFailed) as failed:
        check01(lab01("starter"))()
    assert str(failed.value) == stored_error(LAB01)
    assert [e.what for e in failed.value.report.missed] == [CRASH, SENT_TWICE]
    assert check01(lab01("solution"))().passed
    out = capsys.readouterr().out
    assert "[MISSED] a crash between" in out and "All 5 expectations met" in out


def test_lab01_broken_solutions_fail(lab01) -> None:  # type: ignore[no-untyped-def]
    # Keyed on the SQS MessageId: the producer's second message has another one.
    by_message_id = replace(
        "execute_transactional(order, effect)", 'execute_transactional({**order, "key": message["MessageId"]}, effect)'
    )
    assert missed(check01(lab01("solution", by_message_id))) == [SENT_TWICE]
    # The charge and the record in two writes (execute): a crash between them leaves the record in progress, the
    # redelivery is refused (InProgress) until the lease expires, then charges again.
    unfenced = replace(
        "return idem.execute_transactional(order, effect).value",
        'return idem.execute(order, lambda: ledger.charge(order["order_id"], order["amount"], by=worker)).value',
    )
    ns = lab01("solution", lambda code: unfenced(code).replace("lease_duration=10", "lease_duration=3"))
    assert missed(check01(ns)) == [CRASH, "the consumer raises no errors"]


def test_lab01_a_set_in_memory_dies_with_the_worker(lab01) -> None:  # type: ignore[no-untyped-def]
    in_memory = replace(
        '    def handle(message):\n        order = json.loads(message["Body"])\n',
        '    seen = set()\n\n    def handle(message):\n        order = json.loads(message["Body"])\n'
        '        if order["key"] in seen:\n            return\n        seen.add(order["key"])\n',
    )
    assert missed(check01(lab01("starter", in_memory))) == [CRASH]


def test_lab01_a_different_correct_fix_of_the_starter_passes(lab01) -> None:  # type: ignore[no-untyped-def]
    # Not the library: a conditional put of the client's key, then the charge (the crash comes after both).
    fix = replace(
        "        # TODO: a redelivered or duplicate message must not charge again\n",
        "        try:\n"
        "            seen.put_item(TableName=table, Item={'pk': {'S': order['key']}},"
        " ConditionExpression='attribute_not_exists(pk)')\n"
        "        except seen.exceptions.ConditionalCheckFailedException:\n"
        "            return\n",
    )
    ns = lab01("starter", lambda code: fix(code))
    ns["table"] = ns["wb"].resources.ensure_table("seen")
    ns["seen"] = ns["wb"].client("dynamodb")
    assert check01(ns)().passed


def check02(ns: dict[str, Any]) -> Callable[[], Report]:
    return lambda: ns["check_payment_endpoint"](ns["ledger"], ns["make_endpoint"])


@pytest.fixture
def lab02(backend):  # type: ignore[no-untyped-def]
    made: list[dict[str, Any]] = []

    def make(variant: str, edit: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
        made.append(lab_code(LAB02, variant, "t-lab02", edit))
        return made[-1]

    yield make
    for ns in made:
        ns["wb"].cleanup()


REPLAY = "a retry with the same key replays the first response without charging"
MISMATCH = "the same key with another payload is refused with 422"
IN_FLIGHT = "the same key while the first request is running is refused with 409"
NO_KEY = "a request without Idempotency-Key is refused with 400"


def test_lab02_starter_fails_with_the_stored_error_and_solution_passes(lab02) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LabCheckFailed) as failed:
        check02(lab02("starter"))()
    assert str(failed.value) == stored_error(LAB02)
    assert [e.what for e in failed.value.report.missed] == [REPLAY, MISMATCH, IN_FLIGHT, NO_KEY]
    assert check02(lab02("solution"))().passed


def test_lab02_broken_solutions_fail(lab02) -> None:  # type: ignore[no-untyped-def]
    optional_key = replace("body, charge)", "body, charge, require_key=False)")
    assert missed(check02(lab02("solution", optional_key))) == [NO_KEY]
    # A fresh in-memory store per request remembers nothing.
    forgetful = replace(
        "        return handle_http(idem,",
        "        idem = Idempotency(config, store=MemoryStore())\n        return handle_http(idem,",
    )
    ns = lab02(
        "solution", lambda code: forgetful(code).replace("import DynamoDBStore,", "import DynamoDBStore, MemoryStore,")
    )
    assert missed(check02(ns)) == [REPLAY, MISMATCH, IN_FLIGHT]


def test_lab02_a_fixed_starter_passes(lab02) -> None:  # type: ignore[no-untyped-def]
    # The starter with the TODO done: one shared in-memory store is enough inside one server process.
    fix = replace(
        "        return charge(HttpRequest(method, path, headers, body))",
        "        return handle_http(idem, method, path, headers, body, charge)",
    )
    ns = lab02("starter", fix)
    exec(
        "from helpers.idempotency import Idempotency, MemoryStore, handle_http\n"
        "idem = Idempotency(store=MemoryStore(), scope='t', token_header='Idempotency-Key')",
        ns,
    )
    assert check02(ns)().passed


LAB04 = ROOT / "labs" / "04_route_au_nz_and_big_orders"
ACCEPTED = "every pattern is one AWS accepts"
AU_NZ = "au-nz receives exactly au-25, nz-40, au-100, nz-250"
BIG = "big-orders receives exactly us-150, au-100, nz-250"


@pytest.fixture
def lab04(backend):  # type: ignore[no-untyped-def]
    made: list[dict[str, Any]] = []

    def make(variant: str, edit: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
        made.append(lab_code(LAB04, variant, "t-lab04", edit))
        return made[-1]

    yield make
    for ns in made:
        ns["wb"].cleanup()


def check04(ns: dict[str, Any]) -> Callable[[], Report]:
    return lambda: ns["check_routing"](ns["wb"], ns["RULES"])


def test_lab04_starter_fails_with_the_stored_error_and_solution_passes(lab04) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LabCheckFailed) as failed:
        check04(lab04("starter"))()
    assert str(failed.value) == stored_error(LAB04)
    assert [e.what for e in failed.value.report.missed] == [ACCEPTED, AU_NZ, BIG]
    assert check04(lab04("solution"))().passed


def test_lab04_each_classic_mistake_alone_fails(lab04) -> None:  # type: ignore[no-untyped-def]
    ns = lab04("solution")
    rules = ns["RULES"]
    orders = ns["ORDERS"]
    nz_forgotten = {**rules, "au-nz": {**orders, "detail": {"data": {"currency": ["AU"]}}}}
    boundary = {**rules, "big-orders": {**orders, "detail": {"data": {"price": [{"numeric": [">", 100]}]}}}}
    no_envelope = {**rules, "au-nz": {"detail": {"data": {"currency": ["AU", "NZ"]}}}}  # catches OrderShipped
    assert missed(lambda: ns["check_routing"](ns["wb"], nz_forgotten)) == [AU_NZ]
    assert missed(lambda: ns["check_routing"](ns["wb"], boundary)) == [BIG]
    assert missed(lambda: ns["check_routing"](ns["wb"], no_envelope)) == [AU_NZ]


def test_lab04_another_correct_fix_of_the_starter_passes(lab04) -> None:  # type: ignore[no-untyped-def]
    fix = replace('"currency": "AU"', '"currency": ["NZ", "AU"]')
    ns = lab04("starter", lambda code: fix(code).replace('[">", "100"]', '[">", 99.99]'))
    assert check04(ns)().passed


def test_bare_values_are_found_where_aws_refuses_them() -> None:
    from helpers.labs import bare_values

    assert bare_values({"source": ["a"], "detail": {"x": "AU", "y": [1], "z": {"w": 5}}}) == ["detail.x", "detail.z.w"]
    assert bare_values("AU") == ["(the pattern)"]


LAB03 = ROOT / "labs" / "03_callback_that_waits_forever"
GIVEN_UP = "a worker that never answers is given up on within 8 s"
COMPENSATED = "... and its order is cancelled (the compensation path)"
DECLINED = "a declined payment cancels the order"
SLOW = "a slow worker that sends a heartbeat every 1 s is paid"


@pytest.fixture
def lab03(backend):  # type: ignore[no-untyped-def]
    made: list[dict[str, Any]] = []

    def make(variant: str, edit: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
        made.append(lab_code(LAB03, variant, "t-lab03", edit))
        return made[-1]

    yield make
    for ns in made:
        ns["wb"].cleanup()


def check03(ns: dict[str, Any]) -> Callable[[], Report]:
    return lambda: ns["check_callback"](ns["wb"], ns["payment_workflow"])


def test_lab03_starter_fails_with_the_stored_error_and_solution_passes(lab03) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LabCheckFailed) as failed:
        check03(lab03("starter"))()
    assert str(failed.value) == stored_error(LAB03)
    assert [e.what for e in failed.value.report.missed] == [GIVEN_UP, COMPENSATED, DECLINED]
    assert check03(lab03("solution"))().passed


def test_lab03_broken_solutions_fail(lab03) -> None:  # type: ignore[no-untyped-def]
    # The Catch names only the worker's error: a time-out fails the execution and leaves the order as it was.
    declines_only = replace('"ErrorEquals": ["States.ALL"]', '"ErrorEquals": ["PaymentDeclined"]')
    assert missed(check03(lab03("solution", declines_only))) == [COMPENSATED]
    # A TimeoutSeconds shorter than the slow worker's job (and no heartbeat, which must be shorter still): alive, but
    # cancelled.
    too_short = replace('"TimeoutSeconds": 30', '"TimeoutSeconds": 2')
    no_heartbeat = replace('"HeartbeatSeconds": 3,', "")
    assert missed(check03(lab03("solution", lambda code: too_short(no_heartbeat(code))))) == [SLOW]


def test_lab03_another_correct_fix_of_the_starter_passes(lab03) -> None:  # type: ignore[no-untyped-def]
    # Only a TimeoutSeconds (no heartbeat), and a Catch that names the two errors it expects.
    todo = "        # TODO: how long may the worker stay silent? how long in all? and what then?\n"
    catch = (
        '        "TimeoutSeconds": 5,\n'
        '        "Catch": [{"ErrorEquals": ["States.Timeout", "PaymentDeclined"], "ResultPath": "$.failure",'
        ' "Next": "Cancel"}],\n'
    )
    captured = '        "Payment captured": {**record(orders_table, "PAID"), "End": True},\n'
    cancel = captured + '        "Cancel": {**record(orders_table, "CANCELLED"), "End": True},\n'
    ns = lab03("starter", lambda code: replace(captured, cancel)(replace(todo, catch)(code)))
    assert check03(ns)().passed


LAB05 = ROOT / "labs" / "05_keys_that_survive_the_pipeline"
SAME_KEY = "the consumer's key is the client's key, the same for every copy of an order"
SAME_NAME = "the execution name is derived from the key: same key, same name"
ONE_EXECUTION = "one execution per client key, with every fault on"
EVERY_ORDER = "every order starts its execution"


@pytest.fixture
def lab05(backend):  # type: ignore[no-untyped-def]
    made: list[dict[str, Any]] = []

    def make(variant: str, edit: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
        made.append(lab_code(LAB05, variant, "t-lab05", edit))
        return made[-1]

    yield make
    for ns in made:
        ns["wb"].cleanup()


def check05(ns: dict[str, Any]) -> Callable[[], Report]:
    return lambda: ns["check_pipeline_keys"](ns["wb"], ns["consumer_key"], ns["execution_name"])


def test_lab05_starter_fails_with_the_stored_error_and_solution_passes(lab05) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LabCheckFailed) as failed:
        check05(lab05("starter"))()
    assert str(failed.value) == stored_error(LAB05)
    assert [e.what for e in failed.value.report.missed] == [SAME_KEY, SAME_NAME, ONE_EXECUTION]
    assert check05(lab05("solution"))().passed


def test_lab05_broken_solutions_fail(lab05) -> None:  # type: ignore[no-untyped-def]
    ns = lab05("solution")
    wb, key, name = ns["wb"], ns["consumer_key"], ns["execution_name"]
    check = ns["check_pipeline_keys"]
    # The event id as key: the second publish is another key, so another name; the derived name saves the rest.
    assert missed(lambda: check(wb, lambda event: event["id"], name)) == [SAME_KEY, ONE_EXECUTION]
    # One name for every order: the first order's execution swallows all the others.
    assert missed(lambda: check(wb, key, lambda k: "payment")) == [EVERY_ORDER]
    # A name AWS refuses (moto starts it anyway; the check refuses it on every backend, first).
    assert missed(lambda: check(wb, key, lambda k: f"payment for {k}"))[0] == SAME_NAME


def test_lab05_another_correct_fix_of_the_starter_passes(lab05) -> None:  # type: ignore[no-untyped-def]
    fix = replace('return event["id"]', 'return event["detail"]["metadata"]["idempotency_key"]')
    ns = lab05("starter", lambda code: fix(code).replace('f"payment-{uuid.uuid4()}"', 'f"payment-{key}"'))
    assert check05(ns)().passed


def test_the_catalogue_matches_the_labs() -> None:
    from helpers.course import LABS as CATALOGUE

    assert [ROOT / "labs" / lab.folder for lab in CATALOGUE] == LABS
    index = (ROOT / "labs" / "README.md").read_text()
    for lab in CATALOGUE:
        text = (ROOT / "labs" / lab.folder / labgen.SOURCE).read_text()
        assert text.startswith(f"# Lab {lab.folder[:2]} · {lab.title}\n")
        assert f"**Time to complete.** {lab.minutes.replace('-', ' to ')} minutes." in text
        assert f"**Follows.** Notebook {lab.follows}," in text
        for part in ("**Goal.**", "## Hints", "Hint 1", "Hint 2", "Hint 3", "## Read next", "## Cleanup"):
            assert part in text, f"{lab.folder}: no {part}"
        assert (ROOT / "labs" / lab.folder / "README.md").exists()
        row = f"[{lab.folder[:2]} · {lab.title}]({lab.folder}/starter.ipynb) | {lab.follows}"
        assert row in index and f"| {lab.minutes} min |" in index, f"labs/README.md: no row for {lab.folder}"
