"""Write environment.yml from requirements.lock, so conda users get exactly the pinned versions pip users get.

`make lock` runs this; tests/test_environment_files.py fails when the two disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\[\],-]+)==([^\s;#]+)")


def lock_pins(path: Path = ROOT / "requirements.lock") -> list[str]:
    pins = []
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


def render() -> str:
    lines = [
        "# Generated from requirements.lock by `make lock` (tools/envfile.py); do not edit by hand.",
        "# conda env create -f environment.yml && conda activate eda-idempotency-workbook",
        "name: eda-idempotency-workbook",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        "      - -e .",
    ]
    lines += [f"      - {pin}" for pin in lock_pins()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
