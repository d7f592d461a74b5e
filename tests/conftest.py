"""Shared pytest fixtures: every test talks to the backend the environment selects (embedded moto by default)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from helpers.aws import backend as backend_mod
from helpers.aws.resources import Resources


@pytest.fixture(scope="session")
def backend() -> backend_mod.Backend:
    """The live backend for this test session (an in-process moto server unless WORKBOOK_BACKEND says otherwise)."""
    live = backend_mod.current()
    yield live
    backend_mod.reset_current()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with no backend variables, for tests of the backend choice itself."""
    for name in list(os.environ):
        if name.startswith(("WORKBOOK_", "AWS_", "LOCALSTACK_")):
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def res(backend: backend_mod.Backend, request: pytest.FixtureRequest) -> Iterator[Resources]:
    """This test file's own resources (prefix ``PREFIX`` in the module, else ``t-<file>``), torn down before and after;
    a test that leaves something behind that teardown cannot find fails here."""
    default = "t-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    resources = Resources(getattr(request.module, "PREFIX", default), backend)
    resources.teardown()
    yield resources
    resources.teardown()
    assert resources.inventory() == []
