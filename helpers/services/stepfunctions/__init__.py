"""State machines kept as ASL files, and what notebook 10 needs to run and draw them.

``load(name, **placeholders)`` reads ``<name>.asl.json`` from this folder and fills ``${Placeholder}`` values (table
names), refusing to return a definition with one left unfilled.

The idempotent workflow (``idempotent_workflow.asl.json``) follows the aws-samples "idempotent-workflow-sam" pattern
(reference section 5) and runs on the emulator unchanged: its Lambda steps are replaced by what the backend can run.

- The key and TTL are computed before the start, in Python (:meth:`IdempotentWorkflow.input_for`): the idempotency
  library's canonical JSON (sorted keys, compact separators) hashed with SHA-256, TTL taken from the caller. The
  seed's first state did this in a Lambda.
- The step that "can fail occasionally" fails when the input says ``test.fail = true``: deterministic.
- The work writes a charge into the ledger table with ``dynamodb:putItem``, so charges are counted.

:class:`IdempotentWorkflow` deploys it (the idempotency table with TTL attribute ``ttl``, the state machine), starts
executions with the right input, waits for them, and reads back the record, the history and the path taken
(``history_frame``, ``flowchart``).

One module per concern: ``definition`` (load and read the ASL), ``keys`` (the idempotency key), ``history``
(reading an execution's events), ``diagram`` (the flowchart) and ``runner`` (:class:`IdempotentWorkflow`).
Everything is importable from ``helpers.services.stepfunctions``.
"""

from __future__ import annotations

from helpers.services.stepfunctions.definition import (
    ASL_DIR,
    IDEMPOTENT_WORKFLOW,
    STATUSES,
    error_matchers,
    iter_states,
    load,
    status_names,
)
from helpers.services.stepfunctions.diagram import flowchart
from helpers.services.stepfunctions.history import edges_taken, history_frame, states_entered
from helpers.services.stepfunctions.keys import canonical_json, idempotency_key, seed_key
from helpers.services.stepfunctions.runner import IdempotentWorkflow, Run, WorkflowTimeout

__all__ = [
    "ASL_DIR",
    "IDEMPOTENT_WORKFLOW",
    "STATUSES",
    "IdempotentWorkflow",
    "Run",
    "WorkflowTimeout",
    "canonical_json",
    "edges_taken",
    "error_matchers",
    "flowchart",
    "history_frame",
    "idempotency_key",
    "iter_states",
    "load",
    "seed_key",
    "states_entered",
    "status_names",
]
