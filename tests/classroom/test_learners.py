"""A learner's copy of the course: the instructor's commit, without solutions, a git repository of its own; a reset
moves it aside (never deletes it) and the next start copies afresh. The launcher's own checks, without a hub."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tools.classroom import classroom, learners, spawner
from tools.classroom.room import ROOT, Room, room_password, strong_secret


def trusted_room(tmp_path: Path, **changes: object) -> Room:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    fields: dict[str, object] = {
        "state_dir": str(tmp_path / "room"), "repo": str(ROOT), "commit": commit.strip(), "ip": "127.0.0.1",
        "port": 1, "hub_port": 2, "proxy_api_port": 3, "board_port": 4, "hub_python": "python",
        "learner_python": "/opt/runtime/bin/python", "proxy_command": "chp", "separate_users": False,
    }  # fmt: skip
    fields.update(changes)
    return Room(**fields)  # type: ignore[arg-type]


def test_a_copy_is_the_instructors_commit_without_solutions_in_a_repository_of_its_own(tmp_path: Path) -> None:
    room = trusted_room(tmp_path)
    copy = learners.ensure_learner(room, "alice")
    assert copy == room.copy("alice") and (copy / "helpers" / "progress.py").exists()
    assert not list(copy.glob("labs/*/solution.ipynb")) and list(copy.glob("labs/*/starter.ipynb"))
    tracked = subprocess.run(["git", "-C", str(copy), "ls-files"], capture_output=True, text=True).stdout.split()
    assert "notebooks/00_welcome.ipynb" in tracked and not any(t.endswith("solution.ipynb") for t in tracked)
    assert oct(room.home("alice").stat().st_mode & 0o777) == "0o700"
    (copy / "mine.txt").write_text("my work")
    assert learners.ensure_learner(room, "alice") == copy and (copy / "mine.txt").exists(), "a restart keeps work"


def test_solutions_are_handed_out_only_when_asked(tmp_path: Path) -> None:
    copy = learners.ensure_learner(trusted_room(tmp_path, with_solutions=True), "bob")
    assert list(copy.glob("labs/*/solution.ipynb"))


def test_a_reset_moves_work_aside_and_the_next_start_copies_afresh(tmp_path: Path) -> None:
    room = trusted_room(tmp_path)
    copy = learners.ensure_learner(room, "carol")
    (copy / "mine.txt").write_text("my work")
    aside = learners.move_aside(room, "carol")
    assert aside is not None and (aside / "workbook" / "mine.txt").read_text() == "my work"
    fresh = learners.ensure_learner(room, "carol")
    assert not (fresh / "mine.txt").exists()
    assert learners.move_aside(trusted_room(tmp_path / "other"), "nobody") is None


def test_a_learners_server_sees_no_backend_of_the_instructors_and_posts_to_the_board(tmp_path: Path) -> None:
    room = trusted_room(tmp_path)
    env = spawner.learner_environment(room, "alice", room.copy("alice"), room.home("alice"), "wbc-alice")
    assert env["PYTHONPATH"] == str(room.copy("alice")) and env["WORKBOOK_LEARNER"] == "alice"
    assert env["WORKBOOK_PROGRESS_URL"] == "http://127.0.0.1:4/services/progress/api/records"
    assert "AWS_ENDPOINT_URL" not in env and "WORKBOOK_BACKEND" not in env, "each kernel starts its own moto"
    assert env["PATH"].startswith("/opt/runtime/bin:")
    shared = trusted_room(tmp_path, backend="localstack", endpoint="http://127.0.0.1:4566")
    env = spawner.learner_environment(shared, "alice", shared.copy("alice"), shared.home("alice"), "wbc-alice")
    assert (env["WORKBOOK_BACKEND"], env["AWS_ENDPOINT_URL"]) == ("localstack", "http://127.0.0.1:4566")


def test_secrets_are_strong_and_the_room_password_is_easy_to_read_aloud() -> None:
    assert len(strong_secret()) >= 32 and strong_secret() != strong_secret()
    password = room_password()
    assert len(password) == 14 and password.count("-") == 2 and not set(password) & set("il1o0")


def test_unreachable_names_folders_another_user_cannot_pass(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "python").write_text("")
    assert str(private) in classroom.unreachable(private / "python")


@pytest.mark.parametrize("names", ["Alice", "nb06", "a-b", "instructor"])
def test_bad_learner_names_are_refused_before_anything_starts(names: str) -> None:
    opts = classroom.parser().parse_args(["start", "--learners", names, "--prespawn", "1"])
    with pytest.raises(SystemExit, match="learner names"):
        classroom.learner_names(opts)


def test_prespawn_without_names_makes_numbered_learners() -> None:
    opts = classroom.parser().parse_args(["start", "--prespawn", "3"])
    assert classroom.learner_names(opts) == ["learner01", "learner02", "learner03"]


def test_a_process_carrying_the_rooms_marker_is_found(tmp_path: Path) -> None:
    marker = "test" + os.urandom(4).hex()
    env = {**os.environ, "WORKBOOK_CLASSROOM": marker}
    sleeper = subprocess.Popen(["sleep", "30"], env=env)
    try:
        # Until the child has exec'd, /proc shows the parent's environment (no marker): wait for the exec first.
        cmdline = Path(f"/proc/{sleeper.pid}/cmdline")
        deadline = time.monotonic() + 10
        while not cmdline.read_bytes().startswith(b"sleep") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert classroom.marked_processes(marker) == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert classroom.marked_processes(marker) == []


def test_the_announcement_warns_about_a_trusted_room_and_a_network_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    room = trusted_room(tmp_path, ip="192.0.2.10", port=8000)
    room.write_secret("room-password", "k7mx-3qpr-9hst")
    room.write_secret("instructor-password", strong_secret())
    classroom.announce(room, 9.5)
    said = capsys.readouterr().out
    assert "hub URL (hand this out):   http://192.0.2.10:8000/" in said
    assert "room password (learners):  k7mx-3qpr-9hst" in said
    assert room.secret("instructor-password") not in said
    assert "WARNING: trusted-room mode" in said
    assert "put TLS in front" in said.replace("\n", " ")
    loopback = trusted_room(tmp_path / "quiet", separate_users=True)
    loopback.write_secret("room-password", "k7mx-3qpr-9hst")
    classroom.announce(loopback, 9.5)
    said = capsys.readouterr().out
    assert "TLS" not in said and "trusted-room" not in said and "none can read another's files" in said
