"""Idempotency for functions, queue consumers and HTTP APIs, on DynamoDB (or any store with conditional writes).

Quick start::

    from idempotency import DynamoDBStore, Idempotency   # the name you copied this folder under

    store = DynamoDBStore("idempotency", client=boto3.client("dynamodb"))
    store.create_table()                          # once; safe to repeat
    idem = Idempotency(store=store, scope="payments.charge", token_field="idempotency_key")

    outcome = idem.execute(order, lambda: charge(order))
    outcome.value, outcome.replayed, outcome.round_trips

Forms: :meth:`Idempotency.execute`, :meth:`Idempotency.execute_transactional` (one round trip, effect fenced),
:meth:`Idempotency.guard` (context manager / step by step), :func:`idempotent` (decorator),
:func:`process_sqs_batch`, :func:`handle_http`. It needs only boto3 and jmespath.
"""

from .cache import LocalCache
from .clock import Clock, ManualClock, SystemClock
from .config import IdempotencyConfig, WaitPolicy
from .context import Guard
from .core import EffectContext, Idempotency, Outcome, UnprotectedCall
from .decorator import idempotent, last_outcome
from .errors import (
    ConfigurationError,
    EffectFailed,
    IdempotencyError,
    InProgress,
    InvalidKey,
    InvalidRecord,
    ItemTooLarge,
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
    UnknownFunction,
)
from .hooks import HOOK_POINTS, FaultHooks, HookContext
from .http import HttpRequest, HttpResponse, handle_http, parse_sf_string
from .keys import Identity, canonical_json, fingerprint
from .record import ABSENT, EXPIRED, Record, Status
from .sqs_batch import BatchReport, RecordResult, process_sqs_batch
from .store import ClaimResult, DynamoDBStore, Effect, MemoryStore, Store
from .transitions import TransitionLog

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
    "InvalidRecord",
    "ItemTooLarge",
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
    "UnknownFunction",
    "UnprotectedCall",
    "WaitPolicy",
    "canonical_json",
    "fingerprint",
    "handle_http",
    "idempotent",
    "last_outcome",
    "parse_sf_string",
    "process_sqs_batch",
]
