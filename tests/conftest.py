"""Shared pytest fixtures: every test talks to the backend the environment selects (embedded moto by default)."""

from __future__ import annotations

import os

import pytest

from helpers.aws import backend as backend_mod


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
