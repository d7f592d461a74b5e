"""A learner's place on this machine: a system user of their own (as root on Linux), a home, a copy of the course.

The copy is the course at the commit the instructor runs (``git archive`` of that commit, so work not yet committed by
the instructor is not handed out, and lab solutions stay out unless the instructor says so), made into a git repository
of its own so the learner (and the instructor, after class) can see what they changed. Homes are 0700 and owned by
the learner's system user: learners cannot read each other's work. A reset moves the home aside, never deletes it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from tools.classroom import settings
from tools.classroom.room import Room

USERS_FILE = "system-users.txt"


def system_user(room: Room, learner: str) -> str:
    """The account a learner's server runs as: their own when learners are separate, else the instructor's."""
    if room.separate_users:
        return f"{settings.SYSTEM_USER_PREFIX}{learner}"
    return pwd.getpwuid(os.getuid()).pw_name


def ensure_system_user(room: Room, learner: str) -> tuple[int, int]:
    """Create the learner's system user once (no login shell password, home in the room); returns (uid, gid)."""
    name = system_user(room, learner)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [
                "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(room.home(learner)),
                "--shell", "/bin/bash", "--comment", f"workbook classroom learner {learner}", name,
            ],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        with (room.state / USERS_FILE).open("a") as out:
            out.write(name + "\n")
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def ensure_learner(room: Room, learner: str) -> Path:
    """The learner's home with a copy of the course in it, made at first start and after a reset; returns the copy."""
    home, copy = room.home(learner), room.copy(learner)
    owner = ensure_system_user(room, learner) if room.separate_users else None
    if copy.exists():
        return copy
    room.learners_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(room.learners_dir, 0o711)  # noqa: S103 - each passes through to their own home; none lists the others
    home.mkdir(mode=0o700, exist_ok=True)
    partial = home / "workbook.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    course_archive(room, partial)
    git = ["git", "-C", str(partial), "-c", "user.name=workbook classroom", "-c", "user.email=classroom@localhost"]
    subprocess.run([*git, "init", "-q", "-b", "workbook"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    message = f"The course at {room.commit[:12]}, as handed out" + ("" if room.with_solutions else " (no solutions)")
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    partial.rename(copy)
    if owner is not None:
        chown_tree(home, *owner)
    os.chmod(home, 0o700)
    return copy


def course_archive(room: Room, into: Path) -> None:
    """Unpack the instructor's commit into ``into`` (solutions excluded unless handed out)."""
    pathspec = ["--", "."] if room.with_solutions else ["--", ".", f":(exclude,glob){settings.SOLUTIONS}"]
    archive = subprocess.Popen(
        ["git", "-C", room.repo, "archive", "--format=tar", room.commit, *pathspec], stdout=subprocess.PIPE
    )
    assert archive.stdout is not None
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        tar.extractall(into, filter="data")
    if archive.wait() != 0:
        raise RuntimeError(f"git archive of {room.commit} from {room.repo} failed")


def chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def move_aside(room: Room, learner: str) -> Path | None:
    """Reset: the learner's home moves to ``<name>.reset-<time>`` (kept, never deleted); the next start copies anew."""
    home = room.home(learner)
    if not home.exists():
        return None
    aside = home.with_name(f"{learner}.reset-{time.strftime('%Y%m%d-%H%M%S')}")
    home.rename(aside)
    return aside


def remove_system_users(room: Room) -> list[str]:
    """After class: delete the system users this room created (their homes stay in the room, owned by root)."""
    listed = room.state / USERS_FILE
    if not listed.exists():
        return []
    removed = []
    for name in dict.fromkeys(listed.read_text().split()):
        if not name.startswith(settings.SYSTEM_USER_PREFIX):
            continue
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        for folder in room.learners_dir.glob("*"):
            if folder.is_dir() and folder.stat().st_uid == entry.pw_uid:
                chown_tree(folder, 0, 0)
        subprocess.run(["userdel", name], check=True, capture_output=True)
        _remove_group(name)
        removed.append(name)
    listed.unlink()
    return removed


def _remove_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        return
    subprocess.run(["groupdel", name], check=False, capture_output=True)
