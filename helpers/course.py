"""The course map: every notebook and lab in order, linked when its file exists (notebook 00 and the README use it).

A chapter or lab whose file does not exist yet is *planned*. Notebook prose may name a planned chapter or lab, never one
the map does not know: ``tests/test_course_references.py`` checks every notebook against this map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Chapter:
    number: str
    title: str
    sees: str
    stem: str


CURRICULUM: tuple[Chapter, ...] = (
    Chapter("00", "Welcome and setup", "backend health, what runs where, how to reset", "00_welcome"),
    Chapter("01", "Coupling", "a call fails while the receiver is down; a queued message waits", "01_coupling"),
    Chapter("02", "Sync vs queue vs router vs bus", "the same order flow four ways, measured", "02_integration_styles"),
    Chapter(
        "03", "Event bus routing", "content-based rules matching and not matching real events", "03_event_bus_routing"
    ),
    Chapter(
        "04", "Sparse vs full events", "callbacks, schema evolution, cost of full state", "04_sparse_vs_full_events"
    ),
    Chapter(
        "05",
        "Choreography vs orchestration",
        "events between domains vs a Step Functions workflow",
        "05_choreography_vs_orchestration",
    ),
    Chapter(
        "06",
        "Where duplicates come from",
        "transmission, receiver and service duplicates, counted",
        "06_where_duplicates_come_from",
    ),
    Chapter("07", "Idempotency tokens", "each rule of a good token broken on purpose", "07_idempotency_tokens"),
    Chapter(
        "08",
        "Idempotent AWS services",
        "SQS FIFO, SNS FIFO, execution names; classic-bus PutEvents is not",
        "08_idempotent_aws_services",
    ),
    Chapter("09", "The idempotent consumer", "helpers.idempotency on DynamoDB vs Powertools", "09_idempotent_consumer"),
    Chapter("10", "The idempotent workflow", "Step Functions with a DynamoDB semaphore", "10_idempotent_workflow"),
    Chapter(
        "11",
        "API destinations and Idempotency-Key",
        "EventBridge to an HTTP API with IETF semantics",
        "11_api_destinations_idempotency_key",
    ),
    Chapter(
        "12",
        "Tokens flow through systems",
        "one key from client to downstream API, exactly-once effects",
        "12_tokens_flow_through_systems",
    ),
)


@dataclass(frozen=True)
class Lab:
    slug: str
    title: str


# The labs the course design names; a lab's folder is labs/<slug>/. Until the folder exists the lab is planned.
LABS: tuple[Lab, ...] = (
    Lab("idempotent_payment_endpoint", "Make an HTTP payment endpoint idempotent"),
    Lab("crash_safe_consumer", "Fix a consumer that double-charges after a crash"),
    Lab("dedup_ids_and_tokens", "Choose deduplication ids and tokens correctly"),
    Lab("idempotent_workflow", "Finish the idempotent workflow's state machine"),
    Lab("capstone", "The end-to-end capstone"),
)


def chapter(number: str) -> Chapter | None:
    """The chapter with this two-digit number, or None when the course map has none."""
    return next((c for c in CURRICULUM if c.number == number), None)


def notebook_path(chapter: Chapter) -> Path:
    return ROOT / "notebooks" / f"{chapter.stem}.ipynb"


def labs() -> list[Path]:
    """Lab folders present in this checkout, in order."""
    return sorted(p for p in (ROOT / "labs").glob("*/") if p.is_dir() and not p.name.startswith((".", "_")))


def map_rows(link_base: str = "") -> list[dict[str, str]]:
    """One row per chapter; a link where the notebook exists, 'planned' where it does not yet."""
    rows = []
    for chapter in CURRICULUM:
        path = notebook_path(chapter)
        if path.exists():
            link = f"[{chapter.title}]({link_base}{path.name})"
            status = "available"
        else:
            link, status = chapter.title, "planned"
        rows.append({"#": chapter.number, "notebook": link, "what you see happen": chapter.sees, "status": status})
    return rows


def map_markdown(link_base: str = "") -> str:
    lines = ["| # | notebook | what you see happen | status |", "|---|---|---|---|"]
    lines += [
        f"| {r['#']} | {r['notebook']} | {r['what you see happen']} | {r['status']} |" for r in map_rows(link_base)
    ]
    found = labs()
    if found:
        lines.append("")
        lines.append("Labs: " + ", ".join(f"[{p.name}]({link_base}../labs/{p.name}/)" for p in found))
    planned = [lab.title for lab in LABS if not (ROOT / "labs" / lab.slug).is_dir()]
    if planned:
        lines.append("")
        lines.append("Labs planned: " + "; ".join(planned) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(map_markdown("notebooks/"), end="")
