"""Two learners on one shared backend (a classroom's LocalStack): neither one's setup touches the other's resources.

On the embedded suite the shared backend is this session's moto seen as a classroom kernel sees a shared server (not
in-kernel); on the LocalStack suite it is LocalStack itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import notebook
from helpers.aws import backend as backend_mod
from helpers.aws.resources import Resources, check_learner, course_prefixes, teardown_all

A, B = "tlearnera", "tlearnerb"


@pytest.fixture
def shared(backend: backend_mod.Backend) -> Iterator[backend_mod.Backend]:
    view = backend
    if backend.in_kernel:
        view = backend_mod.Backend(backend.name, backend.endpoint_url, backend.region, backend.session)
    for learner in (A, B):
        teardown_all(course_prefixes(view, learner=learner), view)
    yield view
    for learner in (A, B):
        teardown_all(course_prefixes(view, learner=learner), view)


def test_two_learners_on_one_backend_never_touch_each_others_resources(shared: backend_mod.Backend) -> None:
    a, b = Resources("lab01", shared, learner=A), Resources("lab01", shared, learner=B)
    assert (a.prefix, b.prefix) == (f"{A}-lab01", f"{B}-lab01")
    queue = a.ensure_queue("orders")
    a.ensure_table("ledger")
    b.teardown()  # what B's setup("lab01") does first, in the middle of A's check
    assert a.inventory() == [("dynamodb", f"{A}-lab01-ledger"), ("sqs", queue.name)]
    b.ensure_queue("orders")
    a.teardown()
    assert a.inventory() == []
    assert b.inventory() == [("sqs", f"{B}-lab01-orders")]
    # a classroom's reset of one learner finds only that learner's prefixes
    assert course_prefixes(shared, learner=B) == [f"{B}-lab01"]
    assert course_prefixes(shared, learner=A) == []


def test_setup_on_a_shared_backend_names_resources_after_the_learner(
    shared: backend_mod.Backend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(backend_mod, "_current", shared)
    monkeypatch.setenv("WORKBOOK_LEARNER", A)
    wb = notebook.setup("nb00")
    assert wb.resources.prefix == f"{A}-nb00"
    assert f"resources are named '{A}-nb00-*'" in capsys.readouterr().out
    monkeypatch.setenv("WORKBOOK_LEARNER", B)
    other = notebook.setup("nb00")
    queue = wb.resources.ensure_queue("orders")
    other.cleanup()
    assert wb.resources.inventory() == [("sqs", queue.name)]
    wb.cleanup()


def test_a_private_in_kernel_emulator_keeps_the_names_the_stored_notebooks_show(backend: backend_mod.Backend) -> None:
    if not backend.in_kernel:
        pytest.skip("this suite's backend is shared; the in-kernel case is the embedded suite's")
    assert Resources("nb00", backend, learner=A).prefix == "nb00"


def test_the_learner_comes_from_the_environment(shared: backend_mod.Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBOOK_LEARNER", A)
    assert Resources("lab02", shared).prefix == f"{A}-lab02"
    assert Resources("lab02", shared, learner="").prefix == "lab02"
    monkeypatch.delenv("WORKBOOK_LEARNER")
    assert Resources("lab02", shared).prefix == "lab02"


@pytest.mark.parametrize("bad", ["Alice", "a-b", "nb06", "lab01", "x" * 13, "1abc", ""])
def test_learner_names_that_could_clash_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="learner name"):
        check_learner(bad)


def test_learner_names_that_fit_are_accepted() -> None:
    assert [check_learner(n) for n in ("alice", "b2", "nbx", "labrador", "x" * 12)] == [
        "alice", "b2", "nbx", "labrador", "x" * 12,
    ]  # fmt: skip
