"""Rebuild the learner's functions in a fresh Python interpreter and call them there: "the same in any process".

Why a new interpreter and not a fork: a forked child inherits its parent's memory *and* its per-process secrets, such
as the seed of Python's ``hash()`` for strings. A key computed with ``hash()`` is the same in a fork and different in
every restarted process. Only a fresh interpreter, started with another ``PYTHONHASHSEED``, shows that.

How the functions get there: a notebook cell's source is kept by IPython (``linecache``) under the name its code
objects carry, so the cell that defined a function can be run again, as a whole, in the new interpreter (a function
from an importable module is imported instead). The new interpreter has no AWS access (its endpoint points at a
closed port): a key function that needs the network, or a name defined in another cell, fails there, and the check
says so.
"""

from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The program the fresh interpreter runs: read the job from stdin, rebuild the functions, answer on stdout.
_PROGRAM = r"""
import importlib, json, sys, traceback
job = json.loads(sys.stdin.read())
if job["clock_shift_s"]:  # this process starts later than the notebook: its clock, not only its hash() seed, differs
    import datetime, freezegun
    later = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    freezegun.freeze_time(later + datetime.timedelta(seconds=job["clock_shift_s"]), tick=True).start()
namespace = {"__name__": "__lab_cell__"}
answer = {"results": [], "error": ""}
try:
    for name, source in job["sources"]:
        exec(compile(source, name, "exec"), namespace)
    functions = {}
    for alias, (kind, where, attr) in job["functions"].items():
        functions[alias] = getattr(importlib.import_module(where), attr) if kind == "module" else namespace[attr]
    for alias, arg in job["calls"]:
        try:
            answer["results"].append({"value": str(functions[alias](arg))})
        except Exception as exc:
            answer["results"].append({"error": f"{type(exc).__name__}: {exc}"})
except BaseException as exc:
    answer["error"] = f"{type(exc).__name__}: {exc}"
sys.stdout.write("\n" + json.dumps(answer))
"""


class RebuildFailed(RuntimeError):
    """The functions could not be rebuilt (or the fresh interpreter failed or hung); the message says why."""


@dataclass(frozen=True)
class Call:
    function: str  # an alias from the ``functions`` mapping
    argument: Any  # JSON-serialisable


def _origin(fn: Callable[..., Any]) -> tuple[str, str, str, str | None]:
    """(kind, where, attribute, source): a module to import, or a cell's source to run again."""
    module = getattr(fn, "__module__", "") or ""
    name = getattr(fn, "__name__", "")
    code = getattr(fn, "__code__", None)
    if module not in ("", "__main__", "builtins") and module in sys.modules and not module.startswith("__"):
        mod_file = getattr(sys.modules[module], "__file__", None)
        if mod_file and code is not None and os.path.abspath(code.co_filename) == os.path.abspath(mod_file):
            return "module", module, name, None
    if code is None:
        raise RebuildFailed(f"{name or fn!r} is not a plain function defined in a cell")
    lines = linecache.getlines(code.co_filename)
    if not lines:
        raise RebuildFailed(f"the source of {name} is not available to run again (defined in {code.co_filename})")
    return "cell", code.co_filename, name, "".join(lines)


def call_in_fresh_interpreter(
    functions: Mapping[str, Callable[..., Any]],
    calls: Sequence[Call],
    *,
    hash_seed: int,
    timeout: float = 20.0,
    clock_shift_s: float = 0.0,
) -> list[dict[str, str]]:
    """Run ``calls`` in a new interpreter started with ``PYTHONHASHSEED=hash_seed``; one result per call
    (``{"value": str(result)}`` or ``{"error": ...}``). RebuildFailed when the functions cannot be rebuilt there.

    ``clock_shift_s`` runs the interpreter that much later (freezegun, ticking): a process restarted tomorrow."""
    sources: list[tuple[str, str]] = []
    spec: dict[str, tuple[str, str, str]] = {}
    for alias, fn in functions.items():
        kind, where, attr, source = _origin(fn)
        spec[alias] = (kind, where, attr)
        if source is not None and where not in [name for name, _ in sources]:
            sources.append((where, source))
    job = {
        "sources": sources,
        "functions": spec,
        "calls": [[c.function, c.argument] for c in calls],
        "clock_shift_s": clock_shift_s,
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WORKBOOK_", "MOTO_"))},
        "PYTHONHASHSEED": str(hash_seed),
        # No AWS from here: a key function must need none. Port 9 (discard) refuses the connection at once.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "WORKBOOK_BACKEND": "none",
        "AWS_ACCESS_KEY_ID": "none",
        "AWS_SECRET_ACCESS_KEY": "none",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        done = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
            [sys.executable, "-c", _PROGRAM],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RebuildFailed(f"the fresh interpreter did not answer within {timeout:g} s") from None
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    try:
        answer = json.loads(last)
    except ValueError:
        raise RebuildFailed(f"the fresh interpreter failed: {done.stderr.strip()[-200:] or 'no answer'}") from None
    if answer["error"]:
        raise RebuildFailed(f"running the cell again in a fresh interpreter failed: {answer['error'][:200]}")
    return list(answer["results"])
