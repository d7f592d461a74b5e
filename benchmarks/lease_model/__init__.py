"""The lease protocol of helpers.idempotency, model-checked: a world of workers over one key (world.py), explored
exhaustively to a depth (explore.py; ``python -m benchmarks.lease_model``) or at random (the hypothesis state
machine in tests/idempotency/test_idempotency_lease_model.py)."""
