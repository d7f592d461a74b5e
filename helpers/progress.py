"""Where a learner is: every notebook ``setup()`` and every lab check leaves a record of it.

A record is one JSON line appended to the learner's own progress file (``WORKBOOK_PROGRESS_FILE``, by default
``.progress.jsonl`` at the top of the course). ``python -m helpers.progress`` (``make progress``) reads it back and
prints "where am I": the furthest chapter opened and, per lab, done / tried / not started.

In a classroom the hub sets ``WORKBOOK_PROGRESS_URL`` and the single-user server carries the learner's own hub token
(``JUPYTERHUB_API_TOKEN``); each record is then also posted to the instructor's progress board, which files it under
the token's owner, whatever the record says, so nobody can write another learner's row.

Recording must never change what a notebook shows or how long a check takes: it prints nothing, raises nothing, and
never waits on the network. Posts run on one background thread with a bounded timeout; records it could not deliver
wait (a bounded number of them) and go with the next attempt. Each record carries a unique id, so the board counts a
record that was posted twice (a lost response, a retry) once: the course's own lesson, applied to itself.

Under pytest or CI nothing is recorded unless ``WORKBOOK_PROGRESS_FILE`` names a file, so running the test suite does
not fill an author's "where am I" with the solutions CI runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from helpers import course

SCHEMA = 1
FILE_ENV = "WORKBOOK_PROGRESS_FILE"
URL_ENV = "WORKBOOK_PROGRESS_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"  # noqa: S105 - the name of the variable, not a token
DEFAULT_FILE = course.ROOT / ".progress.jsonl"
POST_TIMEOUT_S = 2.0
RETRY_AFTER_S = 30.0
MAX_PENDING = 500
#: A learner is *stuck* on a lab when the same first miss came back this many times within this window.
STUCK_RUNS = 3
STUCK_WINDOW = timedelta(minutes=10)

_LAB_TITLE = re.compile(r"\blab\s*(\d{2})\b", re.I)
_PREFIX = re.compile(r"^(nb|lab)(\d{2})")


def under_test() -> bool:
    """True under CI or pytest (nbval included), where progress bars and widgets stay quiet and nothing is recorded."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or "PYTEST_CURRENT_TEST" in os.environ


def lab_key(title_or_prefix: str) -> str:
    """``lab01`` for "Lab 01 · the double-charging consumer", for the prefix ``lab01``, and for ``01_double...``."""
    text = title_or_prefix.strip()
    match = _LAB_TITLE.search(text) or re.match(r"^(\d{2})_", text)
    return f"lab{match.group(1)}" if match else re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- recording ---------------------------------------------------------------------------------------------------
def record_setup(prefix: str) -> None:
    """A notebook (``nb06``) or lab (``lab01``) was opened and its ``setup()`` ran."""
    record("setup", notebook=prefix)


def record_check(title: str, *, met: int, total: int, first_miss: str | None) -> None:
    """A lab check ran: how many expectations it met, and the first one missed (None when the lab is done)."""
    record("check", lab=lab_key(title), title=title, met=met, total=total, first_miss=first_miss)


def record(kind: str, **fields: Any) -> dict[str, Any] | None:
    """Append one record to the progress file and hand it to the poster; never prints, never raises."""
    try:
        target = progress_file()
        if target is None:
            return None
        entry = {"v": SCHEMA, "id": uuid.uuid4().hex, "at": _stamp(now()), "kind": kind, **fields}
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
        url, token = os.environ.get(URL_ENV, "").strip(), os.environ.get(TOKEN_ENV, "").strip()
        if url.startswith(("http://", "https://")) and token:
            _POSTER.submit(url, token, entry)
        return entry
    except Exception:  # a full disk or a read-only course must not break a notebook
        return None


def progress_file() -> Path | None:
    """The learner's progress file, or None when nothing is to be recorded (under test, unless one is named)."""
    named = os.environ.get(FILE_ENV, "").strip()
    if named:
        return Path(named).expanduser()
    return None if under_test() else DEFAULT_FILE


class _Poster:
    """One daemon thread that posts pending records in order, in batches, with a bounded timeout."""

    def __init__(self) -> None:
        self._pending: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._target: tuple[str, str] = ("", "")

    def submit(self, url: str, token: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._target = (url, token)
            self._pending.append(entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="workbook-progress", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until nothing is pending (tests and the benchmark use it); True when everything was delivered."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            self._wake.set()
            time.sleep(0.05)
        return False

    def _run(self) -> None:
        while True:
            self._wake.wait(RETRY_AFTER_S)
            self._wake.clear()
            with self._lock:
                batch = list(self._pending)
                url, token = self._target
            if not batch:
                continue
            if self._post(url, token, batch):
                delivered = {id(entry) for entry in batch}
                with self._lock:
                    while self._pending and id(self._pending[0]) in delivered:
                        self._pending.popleft()

    @staticmethod
    def _post(url: str, token: str, batch: list[dict[str, Any]]) -> bool:
        request = urllib.request.Request(  # noqa: S310 - the hub's URL, http(s) checked in record()
            url,
            data=json.dumps(batch).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"token {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=POST_TIMEOUT_S) as response:  # noqa: S310
                return 200 <= response.status < 300
        except Exception:
            return False


_POSTER = _Poster()


def flush(timeout_s: float = 5.0) -> bool:
    """Wait (at most ``timeout_s``) until every record was posted; True when none is pending."""
    return _POSTER.flush(timeout_s)


# -- reading -----------------------------------------------------------------------------------------------------
def read(path: Path | None = None) -> list[dict[str, Any]]:
    """The records of a progress file, oldest first; a damaged line is skipped, a missing file is no records."""
    target = path or progress_file() or DEFAULT_FILE
    if not target.exists():
        return []
    records = []
    for line in target.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("at"), str) and isinstance(entry.get("kind"), str):
            records.append(entry)
    return records


@dataclass
class LabProgress:
    """One learner on one lab, from their check records."""

    lab: str
    runs: int = 0
    met: int = 0
    total: int = 0
    done: bool = False  # sticky: once every expectation was met, a later failing run does not undo it
    passed_last: bool = False
    first_miss: str | None = None  # of the latest run
    last_at: datetime | None = None
    misses: list[tuple[datetime, str]] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "done" if self.done else "tried" if self.runs else "not started"

    @property
    def stuck(self) -> bool:
        """The same first miss ``STUCK_RUNS`` times within ``STUCK_WINDOW`` up to the latest run, and not done."""
        if self.done or self.passed_last or not self.first_miss or self.last_at is None:
            return False
        since = self.last_at - STUCK_WINDOW
        same = [at for at, miss in self.misses if miss == self.first_miss and at >= since]
        return len(same) >= STUCK_RUNS

    def minutes_since(self, moment: datetime) -> int | None:
        return None if self.last_at is None else max(0, int((moment - self.last_at).total_seconds() // 60))


@dataclass
class Progress:
    """Everything one learner's records say."""

    labs: dict[str, LabProgress]
    chapters: set[str]
    opened: set[str]
    last_at: datetime | None
    records: int

    @property
    def furthest_chapter(self) -> str | None:
        return max(self.chapters) if self.chapters else None


def lab_keys() -> list[str]:
    """Every lab of the course map, as record keys (``lab01``...)."""
    return [lab_key(lab.folder) for lab in course.LABS]


def summarise(records: Iterable[Mapping[str, Any]]) -> Progress:
    """One learner's records (any order) folded into their progress; records before their last reset do not count."""
    ordered = sorted(records, key=lambda r: str(r.get("at", "")))
    resets = [i for i, r in enumerate(ordered) if r.get("kind") == "reset"]
    if resets:
        ordered = ordered[resets[-1] + 1 :]
    labs = {key: LabProgress(key) for key in lab_keys()}
    chapters: set[str] = set()
    opened: set[str] = set()
    last_at = None
    for entry in ordered:
        try:
            at = parse_time(str(entry["at"]))
        except (KeyError, ValueError):
            continue
        last_at = at if last_at is None or at > last_at else last_at
        if entry.get("kind") == "setup":
            match = _PREFIX.match(str(entry.get("notebook", "")))
            if match and match.group(1) == "nb":
                chapters.add(match.group(2))
            elif match:
                opened.add(f"lab{match.group(2)}")
        elif entry.get("kind") == "check":
            key = str(entry.get("lab") or "")
            if not key:
                continue
            lab = labs.setdefault(key, LabProgress(key))
            lab.runs += 1
            lab.met, lab.total = int(entry.get("met") or 0), int(entry.get("total") or 0)
            miss = entry.get("first_miss")
            lab.first_miss = str(miss) if miss else None
            lab.passed_last = lab.first_miss is None and lab.total > 0 and lab.met == lab.total
            lab.done = lab.done or lab.passed_last
            lab.last_at = at
            if lab.first_miss:
                lab.misses.append((at, lab.first_miss))
            opened.add(key)
    return Progress(labs, chapters, opened, last_at, len(ordered))


def _ago(moment: datetime | None, reference: datetime) -> str:
    if moment is None:
        return "never"
    minutes = max(0, int((reference - moment).total_seconds() // 60))
    return "just now" if minutes == 0 else f"{minutes} min ago"


def where_am_i(records: Iterable[Mapping[str, Any]], reference: datetime | None = None) -> str:
    """The learner's own summary, as plain text for a terminal or a notebook cell."""
    reference = reference or now()
    progress = summarise(records)
    if not progress.records:
        return "No progress recorded yet: open notebook 00 and run its first cell."
    furthest = progress.furthest_chapter
    chapter = course.chapter(furthest) if furthest else None
    lines = [
        f"Furthest chapter opened: {furthest} · {chapter.title}" if chapter else "No chapter opened yet.",
        f"Last activity: {_ago(progress.last_at, reference)}.",
        "",
        "Labs:",
    ]
    titles = {lab_key(lab.folder): lab.title for lab in course.LABS}
    width = max(len(t) for t in titles.values())
    for key, lab in progress.labs.items():
        title = titles.get(key, key)
        if lab.done:
            status = f"done ({lab.runs} run{'s' if lab.runs != 1 else ''})"
        elif lab.runs:
            status = f"tried: {lab.met} of {lab.total} met, fix first: {lab.first_miss}"
            status += f" ({lab.runs} runs, last {_ago(lab.last_at, reference)})"
        else:
            status = "opened, no check run yet" if key in progress.opened else "not started"
        lines.append(f"  {key[3:]} · {title:<{width}}  {status}")
    next_lab = next((k for k, lab in progress.labs.items() if not lab.done and lab.runs), None)
    if next_lab:
        lines += ["", f"Next: finish {next_lab} · {titles.get(next_lab, next_lab)}."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else (progress_file() or DEFAULT_FILE)
    print(f"Progress recorded in {path}\n")
    print(where_am_i(read(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
