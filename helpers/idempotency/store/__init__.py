"""Persistence behind one small interface: DynamoDB (the default) and in-memory (tests, docs, property checks)."""

from helpers.idempotency.store.base import ClaimResult, Effect, Store
from helpers.idempotency.store.dynamodb import DynamoDBStore
from helpers.idempotency.store.memory import MemoryStore

__all__ = ["ClaimResult", "DynamoDBStore", "Effect", "MemoryStore", "Store"]
