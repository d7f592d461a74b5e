"""helpers.idempotency vs Powertools for AWS Lambda (Python) idempotency, on the same backend in one run.

    python -m benchmarks.idempotency --requests 200 --duplicates 0.3 --workers 4 --crash-rate 0.0 --seed 1

The package: env.py (tables, workers, the call log), workload.py, probes.py (round trips, per-call costs, where the
time goes), takeover.py (notebook 09's lease takeover, ``chapters.consumer.lease_takeover``, on the benchmark's
tables), report.py, run.py (flags, the run).

What it measures, for both libraries against the same DynamoDB endpoint (the course backend, embedded moto unless
WORKBOOK_BACKEND says otherwise):

1. round trips per path (first call, duplicate from the store, local-cache hit, and our transactional mode),
   counted by a botocore ``before-call`` hook on each library's client (for ours also the library's own count);
2. a workload (seeded: unique requests, duplicates, optional crashes after the side effect) through N worker
   threads, each worker a separate "container" with its own client and local cache: side effects, round trips,
   requests per second, and the throughput ratio. Workload A's side effect is in memory; workload B's is a
   DynamoDB write, run three ways: Powertools (the write inside the function, then UpdateItem), ours like-for-like
   (the same write inside the action, then a conditional PutItem) and ours in one transaction (fenced);
3. what each backend charges per API call (median of a few single-threaded calls of each operation), and whether
   those per-call costs, not the libraries, favour one side of a throughput ratio;
4. where the time of workload A goes: calls per request of each kind, what each kind costs on this backend, and
   the time spent outside calls (library and SDK), single-threaded (``cost_profile``);
5. lease takeover: worker A stalls past its lease, worker B takes over; who charged, and what A was told.

Fairness: both libraries get their own fresh client per worker with the same botocore config, the same payload
validation (``[customer, amount, currency]``), local cache on, and the same workload order and partition.
Powertools is set up by ``helpers.services.powertools`` (a stand-in Lambda context gives it the lease we give our
library), the one harness notebook 09 uses too. Timings are reported, never asserted: round trips per path are
what carries over to AWS; a throughput ratio on an emulator also measures the emulator's cost per kind of call.
"""

from .env import OURS, OURS_LIKE, OURS_TXN, POWERTOOLS
from .probes import COST_OPS
from .report import jsonable, report
from .run import main, parse_args, run
from .workload import Args

__all__ = [
    "COST_OPS",
    "OURS",
    "OURS_LIKE",
    "OURS_TXN",
    "POWERTOOLS",
    "Args",
    "jsonable",
    "main",
    "parse_args",
    "report",
    "run",
]
