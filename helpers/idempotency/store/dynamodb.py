"""DynamoDB persistence: conditional writes only, so there is no read-then-write race anywhere.

Item layout (one item per key, partition key ``pk``)::

    pk  status  fingerprint  owner  worker  lease_expires_at  expires_at  ttl  updated_at  response  error

``expires_at`` decides expiry (in code, compared with the caller's clock); ``ttl`` (integer epoch seconds) only lets
DynamoDB delete dead items later, which it does lazily (typically within a few days on AWS, with no upper bound
promised; never on moto).

Every write is a whole-item ``PutItem`` (or ``DeleteItem``) with a condition: the writer always knows the full
record it means to leave, and a put costs the same as an update on AWS (and is several times cheaper on moto).
Round trips: claim 1 (``ReturnValues=ALL_OLD`` tells what it replaced, ``ReturnValuesOnConditionCheckFailure=
ALL_OLD`` what stopped it), complete / fail / release 1, claim + effect + completion in one ``TransactWriteItems``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import (
    EffectFailed,
    InvalidRecord,
    ItemTooLarge,
    LeaseLost,
    StoreConflict,
    StoreError,
    StoreUnavailable,
)
from ..record import Record, Status
from .base import DYNAMODB_ITEM_BYTES, DYNAMODB_PARTITION_KEY_BYTES, ClaimResult, Effect, Store

UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
_TRANSACT_OPS = ("Put", "Update", "Delete", "ConditionCheck")


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


def _ttl(expires_at: float) -> dict[str, str]:
    return {"N": str(math.ceil(expires_at))}


class DynamoDBStore(Store):
    """Records in one DynamoDB table. ``client`` is any boto3 DynamoDB client (default: ``boto3.client("dynamodb")``
    with the usual AWS configuration: region, credentials and ``AWS_ENDPOINT_URL`` from the environment)."""

    name = "dynamodb"
    max_item_bytes = DYNAMODB_ITEM_BYTES
    max_key_bytes = DYNAMODB_PARTITION_KEY_BYTES

    def __init__(
        self,
        table_name: str = "idempotency",
        client: Any = None,
        *,
        key_attr: str = "pk",
        ttl_attr: str = "ttl",
    ) -> None:
        self.table_name = table_name
        self.key_attr = key_attr
        self.ttl_attr = ttl_attr
        self._client = client
        self._names = {
            "#pk": key_attr,
            "#st": "status",
            "#fp": "fingerprint",
            "#own": "owner",
            "#wrk": "worker",
            "#lease": "lease_expires_at",
            "#exp": "expires_at",
            "#ttl": ttl_attr,
            "#upd": "updated_at",
            "#resp": "response",
            "#err": "error",
        }

    # ------------------------------------------------------------------ client and errors

    @property
    def client(self) -> Any:
        """The injected client, or (lazily) ``boto3.client("dynamodb")`` from the usual AWS configuration."""
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def _endpoint(self) -> str:
        try:
            return str(self.client.meta.endpoint_url)
        except Exception:  # pragma: no cover - a stub client without meta
            return "?"

    def _unavailable(self, op: str, cause: BaseException) -> StoreUnavailable:
        # a connection never made sent nothing; a lost answer (or a 5xx) may hide an applied write; throttling did not
        code = cause.response.get("Error", {}).get("Code", "") if isinstance(cause, ClientError) else ""
        maybe_applied = isinstance(cause, (ReadTimeoutError, ConnectionClosedError)) or code.startswith(
            ("InternalServerError", "ServiceUnavailable")
        )
        return StoreUnavailable(
            f"the idempotency store (DynamoDB table {self.table_name!r} at {self._endpoint()}) did not answer "
            f"{op}: {type(cause).__name__}: {cause}. Check that the endpoint answers and that the region and "
            "credentials are right; then retry with the same key.",
            maybe_applied=maybe_applied,
        )

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """One API call; conditional failures come back as ClientError for the caller, the rest become typed."""
        try:
            response: dict[str, Any] = getattr(self.client, op)(**kwargs)
            return response
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise
            if code in UNAVAILABLE_CODES:
                raise self._unavailable(op, exc) from exc
            if code == "ValidationException" and "size" in str(exc).lower():
                raise ItemTooLarge(f"DynamoDB {op} on {self.table_name!r} refused an item as too large: {exc}") from exc
            if code == "ResourceNotFoundException":
                raise StoreError(
                    f"DynamoDB table {self.table_name!r} does not exist at {self._endpoint()}. Create it once with "
                    f"DynamoDBStore({self.table_name!r}, client).create_table() (safe to call again)."
                ) from exc
            raise StoreError(f"DynamoDB {op} on {self.table_name!r} failed: {code}: {exc}") from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StoreError(
                f"no usable AWS credentials for DynamoDB {op}: {exc}. Configure a profile or the AWS_* "
                "environment variables (an emulator accepts any non-empty pair)."
            ) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise self._unavailable(op, exc) from exc
        except BotoCoreError as exc:
            raise StoreError(f"DynamoDB {op} on {self.table_name!r} failed: {exc}") from exc

    # ------------------------------------------------------------------ item codec

    def _key(self, key: str) -> dict[str, Any]:
        return {self.key_attr: {"S": key}}

    def to_item(self, r: Record) -> dict[str, Any]:
        item: dict[str, Any] = {
            self.key_attr: {"S": r.key},
            "status": {"S": r.status.value},
            "fingerprint": {"S": r.fingerprint},
            "expires_at": _n(r.expires_at),
            self.ttl_attr: _ttl(r.expires_at),
            "updated_at": _n(r.updated_at),
        }
        for name, value in (("owner", r.owner), ("worker", r.worker), ("response", r.response), ("error", r.error)):
            if value is not None:
                item[name] = {"S": value}
        if r.lease_expires_at is not None:
            item["lease_expires_at"] = _n(r.lease_expires_at)
        return item

    def from_item(self, item: Mapping[str, Any] | None) -> Record | None:
        """The record an item holds; InvalidRecord (naming the key) if this library did not write it."""
        if not item:
            return None
        key_value = item.get(self.key_attr)
        key = key_value.get("S") if isinstance(key_value, Mapping) else None
        if not isinstance(key, str):
            raise InvalidRecord(None, field=self.key_attr, found=key_value, expected="a string key")

        def s(name: str) -> str | None:
            value = item.get(name)
            if value is None:
                return None
            if not isinstance(value, Mapping) or not isinstance(value.get("S"), str):
                raise InvalidRecord(key, field=name, found=value, expected="a string (S)")
            return str(value["S"])

        def n(name: str) -> float | None:
            value = item.get(name)
            if value is None:
                return None
            try:
                return float(value["N"])
            except (TypeError, KeyError, ValueError):
                raise InvalidRecord(key, field=name, found=value, expected="a number (N)") from None

        status = s("status")
        known = next((st for st in Status if st.value == status), None)
        if known is None:
            expected = ", ".join(st.value for st in Status)
            raise InvalidRecord(key, field="status", found=status, expected=f"one of {expected}")
        return Record(
            key=key,
            status=known,
            fingerprint=s("fingerprint") or "",
            expires_at=n("expires_at") or 0.0,
            owner=s("owner"),
            worker=s("worker"),
            lease_expires_at=n("lease_expires_at"),
            response=s("response"),
            error=s("error"),
            updated_at=n("updated_at") or 0.0,
        )

    def _names_for(self, *expressions: str) -> dict[str, str]:
        text = " ".join(expressions)
        return {k: v for k, v in self._names.items() if k in text}

    # ------------------------------------------------------------------ protocol

    _FREE = "attribute_not_exists(#pk) OR #exp <= :now OR (#st = :ip AND #lease <= :now)"
    _OWNED = "#own = :own AND #st = :ip"

    def _free_condition(self, now: float) -> dict[str, Any]:
        return {
            "ConditionExpression": self._FREE,
            "ExpressionAttributeNames": self._names_for(self._FREE),
            "ExpressionAttributeValues": {":now": _n(now), ":ip": {"S": Status.IN_PROGRESS.value}},
        }

    def _owned_condition(self, owner: str) -> dict[str, Any]:
        return {
            "ConditionExpression": self._OWNED,
            "ExpressionAttributeNames": self._names_for(self._OWNED),
            "ExpressionAttributeValues": {":own": {"S": owner}, ":ip": {"S": Status.IN_PROGRESS.value}},
        }

    def claim(self, record: Record, *, now: float) -> ClaimResult:
        new = record.with_changes(updated_at=now)
        try:
            response = self._call(
                "put_item",
                TableName=self.table_name,
                Item=self.to_item(new),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **self._free_condition(now),
            )
        except ClientError as exc:
            return ClaimResult(False, self.from_item(exc.response.get("Item")))
        return ClaimResult(True, new, self.from_item(response.get("Attributes")))

    def _replace_owned(self, record: Record, during: str, now: float) -> Record:
        """Replace the IN_PROGRESS record ``record.owner`` holds with ``record``; LeaseLost (with whatever the
        store holds now, from the failed write itself) if that owner no longer holds it."""
        assert record.owner is not None
        new = record.with_changes(updated_at=now)
        try:
            self._call(
                "put_item",
                TableName=self.table_name,
                Item=self.to_item(new),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **self._owned_condition(record.owner),
            )
        except ClientError as exc:
            current = self.from_item(exc.response.get("Item"))
            raise LeaseLost(record.key, during=during, owner=record.owner, current=current) from None
        return new

    def complete(self, record: Record, *, now: float) -> Record:
        return self._replace_owned(record, "completion", now)

    def fail(self, record: Record, *, now: float) -> Record:
        return self._replace_owned(record, "failure", now)

    def release(self, key: str, owner: str, *, now: float) -> Record:
        try:
            response = self._call(
                "delete_item",
                TableName=self.table_name,
                Key=self._key(key),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **self._owned_condition(owner),
            )
        except ClientError as exc:
            current = self.from_item(exc.response.get("Item"))
            raise LeaseLost(key, during="release", owner=owner, current=current) from None
        record = self.from_item(response.get("Attributes"))
        assert record is not None
        return record

    def get(self, key: str) -> Record | None:
        response = self._call("get_item", TableName=self.table_name, Key=self._key(key), ConsistentRead=True)
        return self.from_item(response.get("Item"))

    def commit(self, record: Record, effect: Effect, *, now: float, owner: str | None = None) -> ClaimResult:
        writes = list(effect.writes)
        if effect.apply is not None and not writes:
            raise TypeError(
                "DynamoDBStore runs side effects as DynamoDB writes: give Effect(writes=[{'Put': {...}}, ...]); "
                "an apply= callable cannot join a DynamoDB transaction."
            )
        if len(writes) > 99:
            raise ValueError(f"{len(writes)} effect writes: a transaction holds 100 items, one is the record")
        for i, w in enumerate(writes):
            if not isinstance(w, Mapping) or len(w) != 1 or next(iter(w)) not in _TRANSACT_OPS:
                raise ValueError(f"effect write {i} must be one of {_TRANSACT_OPS} as a one-key dict, got {w!r}")
        committed = record.with_changes(owner=owner if owner is not None else record.owner, updated_at=now)
        condition = self._free_condition(now) if owner is None else self._owned_condition(owner)
        record_op = {
            "Put": {
                "TableName": self.table_name,
                "Item": self.to_item(committed),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                **condition,
            }
        }
        try:
            self._call("transact_write_items", TransactItems=[record_op, *writes])
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            codes = [r.get("Code") for r in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                existing = self.from_item(reasons[0].get("Item"))
                if owner is not None:
                    raise LeaseLost(record.key, during="fenced commit", owner=owner, current=existing) from None
                return ClaimResult(False, existing)
            if "TransactionConflict" in codes:
                raise StoreConflict(
                    f"a concurrent transaction touched idempotency key {record.key!r} (TransactionConflict); retry"
                ) from exc
            if any(c == "ConditionalCheckFailed" for c in codes[1:]):
                raise EffectFailed(record.key, reasons) from exc
            messages = " ".join(str(r.get("Message", "")) for r in reasons if r.get("Code") == "ValidationError")
            if "size" in messages.lower():
                raise ItemTooLarge(f"TransactWriteItems for {record.key!r} refused an item as too large") from exc
            raise StoreError(f"TransactWriteItems for {record.key!r} was cancelled: {codes or exc}") from exc
        # TransactWriteItems returns no old image: the previous state is unknown here (absent, expired or abandoned).
        return ClaimResult(True, committed, None)

    def run_unprotected(self, effect: Effect) -> None:
        if effect.apply is not None and not effect.writes:
            effect.apply()
        elif effect.writes:
            self._call("transact_write_items", TransactItems=list(effect.writes))

    def delete(self, key: str) -> None:
        self._call("delete_item", TableName=self.table_name, Key=self._key(key))

    # ------------------------------------------------------------------ administration

    def create_table(self, *, wait: bool = True) -> bool:
        """Create the table (on-demand, key ``pk`` S) and switch TTL on; True if it was created now.

        Idempotent: an existing table is left as it is (its TTL is switched on if it was off).
        """
        created = False
        try:
            self.client.describe_table(TableName=self.table_name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise StoreError(f"cannot describe table {self.table_name!r}: {exc}") from exc
            try:
                self.client.create_table(
                    TableName=self.table_name,
                    KeySchema=[{"AttributeName": self.key_attr, "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": self.key_attr, "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
                created = True
            except ClientError as create_exc:
                if create_exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                    raise StoreError(f"cannot create table {self.table_name!r}: {create_exc}") from create_exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise self._unavailable("describe_table", exc) from exc
        if wait:
            self.client.get_waiter("table_exists").wait(
                TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
        ttl = self.client.describe_time_to_live(TableName=self.table_name).get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            self.client.update_time_to_live(
                TableName=self.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": self.ttl_attr},
            )
        return created

    def delete_table(self) -> None:
        """Drop the table (tests and resets)."""
        try:
            self.client.delete_table(TableName=self.table_name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise StoreError(f"cannot delete table {self.table_name!r}: {exc}") from exc

    def describe(self) -> str:
        return f"dynamodb:{self.table_name}"

    def __repr__(self) -> str:
        return f"DynamoDBStore({self.table_name!r})"
