"""helpers/labs/fresh.py: the learner's cell runs again in a new interpreter, with another hash() seed, no AWS."""

from __future__ import annotations

import linecache
from typing import Any

import pytest

from helpers.labs.fresh import Call, RebuildFailed, call_in_fresh_interpreter


def cell(source: str, name: str) -> dict[str, Any]:
    """Define ``source`` the way IPython does for a cell: compiled under a name linecache can give back."""
    linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
    namespace: dict[str, Any] = {}
    exec(compile(source, name, "exec"), namespace)
    return namespace


def test_a_cell_runs_again_in_fresh_interpreters_where_hash_differs() -> None:
    ns = cell(
        "import uuid\n\ndef stable(key):\n    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))\n\n"
        "def salted(key):\n    return hash(key)\n",
        "<test cell 1>",
    )
    functions = {"stable": ns["stable"], "salted": ns["salted"]}
    calls = [Call("stable", "k-1"), Call("salted", "k-1")]
    one, two = (call_in_fresh_interpreter(functions, calls, hash_seed=seed) for seed in (1, 2))
    assert one[0] == two[0] == {"value": ns["stable"]("k-1")}
    assert one[1] != two[1]


def test_a_clock_shift_runs_the_interpreter_later_and_leaves_the_key_alone() -> None:
    ns = cell(
        "import datetime, uuid\n\ndef stable(key):\n    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))\n\n"
        "def dated(key):\n    return f'{datetime.date.today():%Y%m%d}-{key}'\n",
        "<test cell clock>",
    )
    functions = {"stable": ns["stable"], "dated": ns["dated"]}
    calls = [Call("stable", "k-1"), Call("dated", "k-1")]
    now = call_in_fresh_interpreter(functions, calls, hash_seed=1)
    tomorrow = call_in_fresh_interpreter(functions, calls, hash_seed=1, clock_shift_s=26 * 3600)
    assert now[0] == tomorrow[0] == {"value": ns["stable"]("k-1")}
    assert now[1] == {"value": ns["dated"]("k-1")} != tomorrow[1]


def test_memory_does_not_travel_and_errors_come_back_per_call() -> None:
    ns = cell(
        "import uuid\nnames = {}\n\ndef name(key):\n    return names.setdefault(key, str(uuid.uuid4()))\n\n"
        "def boom(key):\n    raise KeyError(key)\n",
        "<test cell 2>",
    )
    here = ns["name"]("k")
    [there, error] = call_in_fresh_interpreter(
        {"name": ns["name"], "boom": ns["boom"]}, [Call("name", "k"), Call("boom", "k")], hash_seed=3
    )
    assert there["value"] != here
    assert error == {"error": "KeyError: 'k'"}


def test_a_cell_that_needs_another_cell_or_hangs_is_a_clear_failure() -> None:
    needs = cell("def key(event):\n    return PREFIX + event\n", "<test cell 3>")
    [result] = call_in_fresh_interpreter({"key": needs["key"]}, [Call("key", "x")], hash_seed=1)
    assert result["error"].startswith("NameError")
    source = "import time\ntime.sleep(60)\n\ndef key(event):\n    return event\n"
    linecache.cache["<test cell 4>"] = (len(source), None, source.splitlines(keepends=True), "<test cell 4>")
    hangs: dict[str, Any] = {}
    exec(compile("def key(event):\n    return event\n", "<test cell 4>", "exec"), hangs)  # not the sleep, here
    with pytest.raises(RebuildFailed, match="did not answer within 1 s"):
        call_in_fresh_interpreter({"key": hangs["key"]}, [Call("key", "x")], hash_seed=1, timeout=1)


def test_a_function_from_a_module_is_imported_there() -> None:
    from helpers.chapters.routing import slug

    [result] = call_in_fresh_interpreter({"slug": slug}, [Call("slug", "Anything-but AU,NZ")], hash_seed=1)
    assert result == {"value": slug("Anything-but AU,NZ")}
