"""The library is copyable as its README promises: under another name, with no course module, on both stores.

Also the shape of the package: no import circle between the engine (core), the guard (context) and the decorator,
and no message naming the course.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "helpers" / "idempotency"

SMOKE = textwrap.dedent(
    """
    import sys

    import boto3
    from moto import mock_aws

    import vendored_idem as idem_lib

    def smoke(store):
        runs = []
        idem = idem_lib.Idempotency(store=store, scope="shop.charge", token_field="key", clock=idem_lib.ManualClock())
        first = idem.execute({"key": "k-1", "amount": 5}, lambda: runs.append(1) or {"charged": 5})
        again = idem.execute({"key": "k-1", "amount": 5}, lambda: runs.append(1))
        assert (first.value, first.replayed, again.replayed) == ({"charged": 5}, False, True)
        assert again.value == first.value
        try:
            idem.execute({"key": "k-1", "amount": 6}, lambda: runs.append(1))
        except idem_lib.PayloadMismatch:
            pass
        else:
            raise AssertionError("a reused key with another payload must be refused")
        assert runs == [1]
        headers = {"Idempotency-Key": '"h-1"'}
        answer = idem_lib.handle_http(idem, "POST", "/c", headers, b"{}", lambda r: (201, {}, b"ok"))
        assert answer.status == 201
        return store.describe()

    print(smoke(idem_lib.MemoryStore()))
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        store = idem_lib.DynamoDBStore("copied-idempotency", client=client)
        store.create_table()
        print(smoke(store))
    leaked = sorted(name for name in sys.modules if name == "helpers" or name.startswith("helpers."))
    assert not leaked, leaked
    print("ok")
    """
)


def test_the_folder_copied_under_another_name_works_on_memory_and_dynamodb(tmp_path: Path) -> None:
    shutil.copytree(LIBRARY, tmp_path / "vendored_idem", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "smoke.py").write_text(SMOKE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHONPATH", "WORKBOOK_"))}
    env["AWS_DEFAULT_REGION"] = "us-east-1"  # mock_aws supplies its own fake credentials
    run = subprocess.run(
        [sys.executable, "smoke.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["memory", "dynamodb:copied-idempotency", "ok"]


def _runtime_imports(path: Path) -> set[str]:
    """Relative modules a file imports when it runs (imports under ``if TYPE_CHECKING:`` left out)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.ImportFrom) and node.level:
                found.add(node.module or "")
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(tree.body)
    return found


def test_only_relative_imports_inside_the_package_and_no_course_names_in_messages() -> None:
    for path in LIBRARY.rglob("*.py"):
        text = path.read_text()
        assert "from helpers" not in text and "import helpers" not in text, path
        for word in ("course", "workbook", "helpers."):
            assert word not in text.lower(), f"{path.name} mentions {word!r}"


def test_no_import_circle_between_engine_guard_and_decorator() -> None:
    imports = {name: _runtime_imports(LIBRARY / f"{name}.py") for name in ("core", "context", "decorator")}
    assert "core" not in imports["context"] and "core" not in imports["decorator"]
    assert {"context", "decorator"} <= imports["core"]


def test_the_guard_uses_no_private_member_of_the_engine() -> None:
    tree = ast.parse((LIBRARY / "context.py").read_text())
    private = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_idem"
        and node.attr.startswith("_")
    }
    assert private == set()


def test_the_folder_carries_the_license_that_lets_it_be_copied() -> None:
    # a copied folder must carry its license (MIT: the notice goes with every copy); the two files never drift
    repository = LIBRARY.parents[1] / "LICENSE"
    assert (LIBRARY / "LICENSE").read_text() == repository.read_text()
    assert repository.read_text().startswith("MIT License\n")
    readme = (LIBRARY / "README.md").read_text()
    assert "It is MIT-licensed" in readme and "## License" in readme
