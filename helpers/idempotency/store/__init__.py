"""Persistence behind one small interface: DynamoDB (the default) and in-memory (tests, docs, property checks)."""

from .base import ClaimResult, Effect, Store
from .dynamodb import DynamoDBStore
from .memory import MemoryStore

__all__ = ["ClaimResult", "DynamoDBStore", "Effect", "MemoryStore", "Store"]
