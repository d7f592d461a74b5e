"""The Step Functions kit: ASL files and their loader, the one wait loop, history readers, diagrams, and the
idempotent workflow of notebook 10.

- ``definition``: ``load(name, **placeholders)`` reads ``asl/<name>.asl.json`` (every state machine of the course
  lives there) and fills ``${Placeholder}`` values; ``iter_states``, ``features``, ``integrations``, ``insert_after``,
  ``definition_diff`` read and edit a definition.
- ``runner``: ``Runner`` starts executions and waits for them through ``poll_until_done`` (the loop ``.sync`` stands
  for); ``Execution`` is one run's record; ``WorkflowTimeout`` a wait that gave up.
- ``history``: ``read`` a history (paginated), ``states_entered``, ``edges_taken``, ``history_frame``,
  ``history_trace`` (the service calls as a sequence diagram).
- ``diagram``: ``flowchart`` draws a definition, with a run's path coloured.
- ``idempotent`` and ``keys``: the idempotent workflow (seed 003), its key, its record and what the seed got wrong.

Everything is importable from ``helpers.services.stepfunctions``.
"""

from __future__ import annotations

from helpers.services.stepfunctions.definition import (
    ASL_DIR,
    children,
    definition_diff,
    features,
    insert_after,
    integrations,
    iter_states,
    load,
)
from helpers.services.stepfunctions.diagram import flowchart, rule_label
from helpers.services.stepfunctions.history import (
    count_events,
    edges_taken,
    history_frame,
    history_trace,
    read,
    states_entered,
)
from helpers.services.stepfunctions.idempotent import (
    IDEMPOTENT_WORKFLOW,
    STATUSES,
    IdempotentWorkflow,
    Run,
    error_matchers,
    status_names,
)
from helpers.services.stepfunctions.keys import canonical_json, idempotency_key, seed_key
from helpers.services.stepfunctions.runner import Execution, Runner, WorkflowTimeout, execution_name, poll_until_done

__all__ = [
    "ASL_DIR",
    "IDEMPOTENT_WORKFLOW",
    "STATUSES",
    "Execution",
    "IdempotentWorkflow",
    "Run",
    "Runner",
    "WorkflowTimeout",
    "canonical_json",
    "children",
    "count_events",
    "definition_diff",
    "edges_taken",
    "error_matchers",
    "execution_name",
    "features",
    "flowchart",
    "history_frame",
    "history_trace",
    "idempotency_key",
    "insert_after",
    "integrations",
    "iter_states",
    "load",
    "poll_until_done",
    "read",
    "rule_label",
    "seed_key",
    "states_entered",
    "status_names",
]
