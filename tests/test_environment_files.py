"""The files a classroom starts from: the lock, its conda mirror, the compose file, the README's fidelity table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from helpers.aws import backend as backend_mod
from helpers.aws import capabilities

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import envfile  # noqa: E402


def test_environment_yml_mirrors_the_lock() -> None:
    lock = envfile.lock_pins()
    assert len(lock) > 50 and all("==" in pin for pin in lock)
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    pinned = sorted(p for p in pip_section if "==" in p)
    assert pinned == sorted(lock), "environment.yml is stale: run `make lock`"
    assert "python=3.11" in conda["dependencies"]


def test_every_top_level_requirement_is_locked_exactly() -> None:
    locked = {p.split("==")[0].lower() for p in envfile.lock_pins()}
    for line in (ROOT / "requirements.in").read_text().splitlines():
        name = re.split(r"[=<>\[ ]", line.strip(), maxsplit=1)[0].lower()
        if name and not name.startswith("#"):
            assert name in locked, f"{name} is in requirements.in but not in requirements.lock"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_last_open_source_localstack_with_the_course_services() -> None:
    localstack = compose()["services"]["localstack"]
    assert localstack["image"] == "localstack/localstack:4.14.0"
    services = set(localstack["environment"]["SERVICES"].split(","))
    assert services == set(backend_mod.LOCALSTACK_SERVICES)
    assert "curl" in " ".join(localstack["healthcheck"]["test"]) and "_localstack/health" in str(
        localstack["healthcheck"]["test"]
    )
    assert any(v.endswith(":/var/lib/localstack") for v in localstack["volumes"])
    assert localstack["environment"]["DEBUG"] == "${DEBUG:-0}"


def test_compose_binds_every_port_to_loopback() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_compose_jupyter_waits_for_a_healthy_localstack_and_needs_a_token() -> None:
    jupyter = compose()["services"]["jupyter"]
    assert jupyter["depends_on"]["localstack"]["condition"] == "service_healthy"
    env = jupyter["environment"]
    assert env["WORKBOOK_BACKEND"] == "localstack"
    assert env["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    # ${VAR:?message} makes compose refuse to start when the token is unset or empty.
    assert re.fullmatch(r"\$\{JUPYTER_TOKEN:\?.+\}", env["JUPYTER_TOKEN"])
    dockerfile = (ROOT / jupyter["build"]["dockerfile"]).read_text()
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "ServerApp.token" not in dockerfile, "the token comes from JUPYTER_TOKEN, never from the image"


def test_no_credential_like_literal_is_committed() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    pattern = re.compile(r"(AKIA[0-9A-Z]{16}|aws_secret_access_key\s*=\s*['\"][^'\"]+['\"]|SecretString=\"[^\"]+\")")
    offenders = []
    for name in tracked:
        path = ROOT / name
        suffixes = {".py", ".ipynb", ".yml", ".yaml", ".md", ".json", ".cfg", ".toml", ".sh"}
        if path.suffix in suffixes and path.exists() and pattern.search(path.read_text(errors="ignore")):
            offenders.append(name)
    assert offenders == []


def test_readme_generated_sections_are_current() -> None:
    import readme

    text = (ROOT / "README.md").read_text()
    assert capabilities.markdown_table() in text
    assert readme.render(text) == text, "README.md is stale: run `make readme`"


def test_pre_commit_hooks_are_local_and_name_tools_that_exist() -> None:
    """No hook fetches anything (the classroom may be offline); each runs a pinned tool or a script of ours."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    for hook in config["repos"][0]["hooks"]:
        assert hook["language"] == "system", hook["id"]
        for word in hook["entry"].replace("'", " ").split():
            if word.startswith(("tools/", "../")) or word.endswith(".py"):
                assert (ROOT / word.removeprefix("../")).exists() or (ROOT / "tools" / word).exists(), word
