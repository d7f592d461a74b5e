"""The labs' checks: run the learner's code against the emulator under the conditions that break wrong solutions,
print what was met and missed, and raise one error naming what to fix first.

One module per lab, named by topic; a lab's notebook imports its check from it explicitly:

- :mod:`helpers.labs.routing` (lab 01): event patterns against real deliveries, of events shown and held out;
- :mod:`helpers.labs.callback` (lab 02): a task-token callback with dead, silent, slow, stuck and declining workers;
- :mod:`helpers.labs.consumer` (lab 03): exactly-once charges through crashes, restarts and concurrent duplicates;
- :mod:`helpers.labs.endpoint` (lab 04): Idempotency-Key over HTTP on two instances of the endpoint;
- :mod:`helpers.labs.pipeline_keys` (lab 05): one execution per client request, in any process.

:mod:`helpers.labs.report` holds what every check shares: :class:`~helpers.labs.report.Report` (the table and the
verdict), :class:`~helpers.labs.report.Expectation` and :class:`~helpers.labs.report.LabCheckFailed`.
:mod:`helpers.labs.processes` runs learner code in forked processes (a restarted worker, a second instance) and
:mod:`helpers.labs.fresh` in fresh interpreters (a different ``hash()`` seed).
"""
