"""Inject, count, record, draw: seeded faults, logical ticks, the side-effect ledger, traffic traces, diagrams."""
