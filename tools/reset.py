"""`make reset`: tear down every notebook's and lab's resources on the backend the environment selects.

For a shared `make lab` server or a classroom LocalStack; restarting the kernel resets a private in-kernel emulator.
"""

from __future__ import annotations

import sys

from helpers.aws import backend
from helpers.aws.resources import teardown_all


def main() -> int:
    try:
        live = backend.current()
    except backend.BackendError as exc:
        print(exc)
        return 2
    if live.in_kernel:
        print("No shared backend is configured (AWS_ENDPOINT_URL is unset): nothing to reset.")
        return 0
    removed = teardown_all(backend=live)
    if not removed:
        print(f"{live.name} at {live.endpoint_url}: no course resources found; already clean.")
    for prefix, count in removed.items():
        print(f"{live.name}: removed {count} resources under '{prefix}-'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
