"""Idempotency for functions, queue consumers and HTTP APIs, on DynamoDB (or any store with conditional writes).

Quick start::

    from helpers.idempotency import DynamoDBStore, Idempotency

    store = DynamoDBStore("idempotency")          # client defaults to helpers.backend.client("dynamodb")
    store.create_table()                          # once; safe to repeat
    idem = Idempotency(store=store, scope="payments.charge", token_field="idempotency_key")

    outcome = idem.execute(order, lambda: charge(order))
    outcome.value, outcome.replayed, outcome.round_trips

Forms: :meth:`Idempotency.execute`, :meth:`Idempotency.execute_transactional` (one round trip, effect fenced),
:meth:`Idempotency.guard` (context manager / step by step), :func:`idempotent` (decorator),
:func:`process_sqs_batch`, :func:`handle_http`. Outside this course only boto3 and jmespath are needed.
"""

from helpers.idempotency.cache import LocalCache
from helpers.idempotency.clock import Clock, ManualClock, SystemClock
from helpers.idempotency.config import IdempotencyConfig, WaitPolicy
from helpers.idempotency.context import Guard
from helpers.idempotency.core import EffectContext, Idempotency, Outcome, UnprotectedCall
from helpers.idempotency.decorator import idempotent, last_outcome
from helpers.idempotency.errors import (
    ConfigurationError,
    EffectFailed,
    IdempotencyError,
    InProgress,
    InvalidKey,
    KeyMissing,
    LeaseLost,
    MalformedPayload,
    PayloadMismatch,
    PayloadNotSerializable,
    ResponseNotStorable,
    SimulatedCrash,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    TerminalError,
)
from helpers.idempotency.hooks import HOOK_POINTS, FaultHooks, HookContext
from helpers.idempotency.http import HttpRequest, HttpResponse, handle_http
from helpers.idempotency.keys import Identity, canonical_json, fingerprint
from helpers.idempotency.record import ABSENT, EXPIRED, Record, Status
from helpers.idempotency.sqs_batch import BatchReport, RecordResult, process_sqs_batch
from helpers.idempotency.store import ClaimResult, DynamoDBStore, Effect, MemoryStore, Store
from helpers.idempotency.transitions import TransitionLog

__all__ = [
    "ABSENT",
    "EXPIRED",
    "HOOK_POINTS",
    "BatchReport",
    "ClaimResult",
    "Clock",
    "ConfigurationError",
    "DynamoDBStore",
    "Effect",
    "EffectContext",
    "EffectFailed",
    "FaultHooks",
    "Guard",
    "HookContext",
    "HttpRequest",
    "HttpResponse",
    "Idempotency",
    "IdempotencyConfig",
    "IdempotencyError",
    "Identity",
    "InProgress",
    "InvalidKey",
    "KeyMissing",
    "LeaseLost",
    "LocalCache",
    "MalformedPayload",
    "ManualClock",
    "MemoryStore",
    "Outcome",
    "PayloadMismatch",
    "PayloadNotSerializable",
    "Record",
    "RecordResult",
    "ResponseNotStorable",
    "SimulatedCrash",
    "Status",
    "Store",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "TerminalError",
    "TransitionLog",
    "UnprotectedCall",
    "WaitPolicy",
    "canonical_json",
    "fingerprint",
    "handle_http",
    "idempotent",
    "last_outcome",
    "process_sqs_batch",
]
