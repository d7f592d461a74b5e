"""pytest plugin: run notebooks the way `make lab` runs them, against one shared moto server.

`make lab` starts one moto server (tools/workbook.py) and hands its endpoint to every kernel; a learner's notebooks
all talk to it. Loaded with ``-p tests.workbook_server`` (``python -m pytest`` puts the repository on the path), this
plugin starts that server the same way, with the same kernel environment, before nbval starts any kernel, so the
stored outputs are checked on the learner's default path. It does nothing when a backend is already chosen
(LocalStack, an endpoint).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_started: dict[str, Any] = {}


def load_launcher() -> ModuleType:
    """tools/workbook.py, the launcher itself (tools/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("workbook_lab_launcher", ROOT / "tools" / "workbook.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wanted(env: dict[str, str] | os._Environ[str]) -> bool:
    """Only on the default backend with no endpoint given: that is what `make lab` replaces with its server."""
    backend = (env.get("WORKBOOK_BACKEND") or "embedded").strip().lower()
    return backend == "embedded" and not (env.get("AWS_ENDPOINT_URL") or "").strip()


def xdist_controller(config: Any) -> bool:
    """Under pytest-xdist the controller runs no notebook: each worker starts its own server instead.

    One server per worker, like one `make lab` per learner: a lab's starter and its solution share a resource prefix
    (as a learner's two notebooks would), so two workers running them at once must not share a backend.
    """
    return not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"


def pytest_configure(config: Any) -> None:
    if not wanted(os.environ) or xdist_controller(config):
        return
    lab = load_launcher()
    server, endpoint, port = lab.start_shared_server(0)
    saved = {name: os.environ.get(name) for name in ("WORKBOOK_BACKEND", "AWS_ENDPOINT_URL", "MOTO_PORT")}
    os.environ.update(lab.kernel_environment(endpoint, port, base={}))
    _started.update(server=server, saved=saved, endpoint=endpoint)


def pytest_report_header(config: Any) -> str | None:
    if "endpoint" in _started:
        return f"notebooks run the `make lab` way: one shared moto server at {_started['endpoint']}"
    return None


def pytest_unconfigure(config: Any) -> None:
    server = _started.pop("server", None)
    if server is None:
        return
    server.stop()
    for name, value in _started.pop("saved").items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _started.clear()
