"""Idempotent ``ensure_*`` for the AWS resources the course uses, all named under one per-notebook prefix.

"Restart kernel and run all" must work twice in a row, so every ``ensure_*`` creates what is missing, brings what
differs back to the requested shape, and changes nothing otherwise. ``teardown()`` deletes everything under the
prefix, whoever created it, so a crashed notebook is cleaned up by the next run.

In a classroom on a *shared* backend (LocalStack in compose, one moto server for the room, real AWS) the prefix also
carries the learner (``WORKBOOK_LEARNER``, set by the classroom's hub): ``alice-lab01``, so learner B's setup of
lab 01 never tears down learner A's queue in the middle of A's check. A kernel with its own embedded moto is private
already: its names stay as they are, and so do the stored notebook outputs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws import backend as backend_mod

TAG_KEY = "workbook"
LEARNER_ENV = "WORKBOOK_LEARNER"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
#: A learner's part of a prefix: no '-' (so ``alice-`` can never be the start of another learner's prefix), short
#: enough for AWS's name limits, and never a course prefix itself (``nb06``, ``lab01``).
LEARNER_RE = re.compile(r"^(?!(?:nb|lab)\d)[a-z][a-z0-9]{0,11}$")
_TRUST_PRINCIPALS = ("states.amazonaws.com", "events.amazonaws.com", "lambda.amazonaws.com")


@dataclass(frozen=True)
class Queue:
    name: str
    url: str
    arn: str


@dataclass(frozen=True)
class Target:
    """An EventBridge rule target; ``extra`` carries the API fields (RetryPolicy, DeadLetterConfig, ...)."""

    id: str
    arn: str
    extra: dict[str, Any] | None = None

    def as_api(self) -> dict[str, Any]:
        return {"Id": self.id, "Arn": self.arn, **(self.extra or {})}


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


class Resources:
    """The resources of one notebook (or test), named ``<prefix>-<name>`` and tagged ``workbook=<prefix>``."""

    def __init__(self, prefix: str, backend: backend_mod.Backend | None = None, *, learner: str | None = None) -> None:
        """``learner``: None takes ``WORKBOOK_LEARNER`` from the environment; "" means no learner."""
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"prefix {prefix!r} must be lower-case letters, digits and '-', at most 24 characters")
        self.backend = backend or backend_mod.current()
        self.learner = learner_from_env() if learner is None else check_learner(learner) if learner else None
        scoped = f"{self.learner}-{prefix}" if self.learner and not self.backend.in_kernel else prefix
        # On real AWS every name carries a course marker too, so teardown can never match someone else's resources.
        self.prefix = f"wb-{scoped}" if self.backend.name == "aws" else scoped
        self.tags = {TAG_KEY: self.prefix}

    # -- naming -------------------------------------------------------------------------------------------------
    def name(self, base: str) -> str:
        return base if base.startswith(self.prefix + "-") else f"{self.prefix}-{base}"

    def _client(self, service: str) -> Any:
        return self.backend.client(service)

    @property
    def account_region(self) -> tuple[str, str]:
        account = self._client("sts").get_caller_identity()["Account"]
        return account, self.backend.region

    # -- SQS ----------------------------------------------------------------------------------------------------
    def ensure_queue(
        self,
        name: str,
        *,
        fifo: bool = False,
        content_based_dedup: bool = False,
        visibility_timeout: int = 30,
        dead_letter_queue: Queue | None = None,
        max_receive_count: int = 3,
        attributes: dict[str, str] | None = None,
    ) -> Queue:
        """A queue with exactly these attributes; FIFO names get their ``.fifo`` suffix added."""
        sqs = self._client("sqs")
        full = self.name(name)
        if fifo and not full.endswith(".fifo"):
            full += ".fifo"
        wanted: dict[str, str] = {"VisibilityTimeout": str(visibility_timeout)}
        if fifo:
            wanted["FifoQueue"] = "true"
            wanted["ContentBasedDeduplication"] = "true" if content_based_dedup else "false"
        if dead_letter_queue is not None:
            wanted["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dead_letter_queue.arn, "maxReceiveCount": str(max_receive_count)}
            )
        wanted.update(attributes or {})
        try:
            url = sqs.get_queue_url(QueueName=full)["QueueUrl"]
        except ClientError as exc:
            if _code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise
            url = sqs.create_queue(QueueName=full, Attributes=wanted, tags=self.tags)["QueueUrl"]
        else:
            current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            changed = {k: v for k, v in wanted.items() if k != "FifoQueue" and not _same_attr(current.get(k), v)}
            if changed:
                sqs.set_queue_attributes(QueueUrl=url, Attributes=changed)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Queue(full, url, arn)

    def ensure_queue_with_dlq(self, name: str, *, max_receive_count: int = 3, **kwargs: Any) -> tuple[Queue, Queue]:
        """A queue and its dead-letter queue (same FIFO-ness), redriving after ``max_receive_count`` receives."""
        fifo = kwargs.get("fifo", False)
        dlq = self.ensure_queue(f"{name}-dlq", fifo=fifo, content_based_dedup=kwargs.get("content_based_dedup", False))
        queue = self.ensure_queue(name, dead_letter_queue=dlq, max_receive_count=max_receive_count, **kwargs)
        return queue, dlq

    def allow_send_from(self, queue: Queue, source_arn: str, service: str) -> None:
        """Let an SNS topic or EventBridge rule send to the queue (the policy AWS requires; emulators ignore it)."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "workbook-send",
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sqs:SendMessage",
                    "Resource": queue.arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
                }
            ],
        }
        self._client("sqs").set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy)})

    # -- SNS ----------------------------------------------------------------------------------------------------
    def ensure_topic(self, name: str, *, fifo: bool = False, content_based_dedup: bool = False) -> str:
        full = self.name(name)
        attributes: dict[str, str] = {}
        if fifo:
            full = full if full.endswith(".fifo") else full + ".fifo"
            attributes = {"FifoTopic": "true", "ContentBasedDeduplication": str(content_based_dedup).lower()}
        tags = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        # CreateTopic is idempotent for the same name and attributes.
        return self._client("sns").create_topic(Name=full, Attributes=attributes, Tags=tags)["TopicArn"]

    def ensure_subscription(self, topic_arn: str, queue: Queue, *, raw: bool = True) -> str:
        sns = self._client("sns")
        for sub in _paginate(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=topic_arn):
            if sub["Endpoint"] == queue.arn and sub["Protocol"] == "sqs":
                return sub["SubscriptionArn"]
        self.allow_send_from(queue, topic_arn, "sns.amazonaws.com")
        return sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue.arn,
            Attributes={"RawMessageDelivery": str(raw).lower()},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]

    # -- EventBridge --------------------------------------------------------------------------------------------
    def ensure_bus(self, name: str) -> str:
        events = self._client("events")
        full = self.name(name)
        try:
            return events.describe_event_bus(Name=full)["Arn"]
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        tags = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        return events.create_event_bus(Name=full, Tags=tags)["EventBusArn"]

    def ensure_rule(
        self, name: str, *, bus: str, pattern: dict[str, Any], targets: Sequence[Target] = (), description: str = ""
    ) -> str:
        """A rule with exactly this pattern and exactly these targets (stale targets are removed)."""
        events = self._client("events")
        full = self.name(name)
        bus_name = bus.rsplit("/", 1)[-1]
        arn = events.put_rule(
            Name=full, EventBusName=bus_name, EventPattern=json.dumps(pattern), State="ENABLED", Description=description
        )["RuleArn"]
        existing = {t["Id"]: t for t in events.list_targets_by_rule(Rule=full, EventBusName=bus_name)["Targets"]}
        wanted = {t.id: t.as_api() for t in targets}
        stale = [tid for tid in existing if tid not in wanted]
        if stale:
            events.remove_targets(Rule=full, EventBusName=bus_name, Ids=stale)
        if wanted and any(existing.get(tid) != api for tid, api in wanted.items()):
            events.put_targets(Rule=full, EventBusName=bus_name, Targets=list(wanted.values()))
        return arn

    def ensure_archive(self, name: str, bus_arn: str, pattern: Mapping[str, Any]) -> str:
        """An archive of the bus's events that match ``pattern`` (brought back to that pattern if it exists)."""
        events = self._client("events")
        full = self.name(name)
        try:
            current = events.describe_archive(ArchiveName=full)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            return str(
                events.create_archive(ArchiveName=full, EventSourceArn=bus_arn, EventPattern=json.dumps(dict(pattern)))[
                    "ArchiveArn"
                ]
            )
        if json.loads(current.get("EventPattern") or "{}") != dict(pattern):
            events.update_archive(ArchiveName=full, EventPattern=json.dumps(dict(pattern)))
        return str(current["ArchiveArn"])

    def archived_events(self, name: str) -> int:
        """How many events the archive holds now (AWS: events can reach an archive minutes after they were put)."""
        return int(self._client("events").describe_archive(ArchiveName=self.name(name)).get("EventCount", 0))

    def ensure_connection(
        self,
        name: str,
        *,
        authorization_type: str,
        auth_parameters: dict[str, Any],
        unchanged: Callable[[dict[str, Any]], bool] | None = None,
    ) -> str:
        """An EventBridge connection (its secret goes to Secrets Manager); returns its ARN.

        DescribeConnection never returns the secret, so whether an existing connection already holds these values
        is the caller's question: ``unchanged(description)`` says so (it may read the secret by ``SecretArn``). A
        connection that differs is deleted and created again (moto's UpdateConnection does not rewrite the secret).
        """
        events = self._client("events")
        full = self.name(name)
        try:
            current = events.describe_connection(Name=full)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        else:
            if unchanged is not None and unchanged(current):
                return current["ConnectionArn"]
            events.delete_connection(Name=full)
        created = events.create_connection(
            Name=full, AuthorizationType=authorization_type, AuthParameters=auth_parameters
        )
        return created["ConnectionArn"]

    def ensure_api_destination(
        self,
        name: str,
        *,
        connection_arn: str,
        endpoint: str,
        method: str = "POST",
        rate_limit_per_second: int | None = None,
    ) -> str:
        """An API destination with exactly these settings; returns its ARN."""
        events = self._client("events")
        full = self.name(name)
        wanted: dict[str, Any] = {"ConnectionArn": connection_arn, "InvocationEndpoint": endpoint, "HttpMethod": method}
        if rate_limit_per_second is not None:
            wanted["InvocationRateLimitPerSecond"] = rate_limit_per_second
        try:
            current = events.describe_api_destination(Name=full)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            return events.create_api_destination(Name=full, **wanted)["ApiDestinationArn"]
        if any(current.get(k) != v for k, v in wanted.items()):
            events.update_api_destination(Name=full, **wanted)
        return current["ApiDestinationArn"]

    # -- DynamoDB -----------------------------------------------------------------------------------------------
    def ensure_table(
        self, name: str, *, partition_key: str = "pk", sort_key: str | None = None, ttl_attribute: str | None = None
    ) -> str:
        """An on-demand table keyed by string attributes; returns its full name once it is ACTIVE."""
        ddb = self._client("dynamodb")
        full = self.name(name)
        try:
            ddb.describe_table(TableName=full)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            keys = [(partition_key, "HASH")] + ([(sort_key, "RANGE")] if sort_key else [])
            ddb.create_table(
                TableName=full,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
                KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
                Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()],
            )
            ddb.get_waiter("table_exists").wait(TableName=full, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        if ttl_attribute:
            ttl = ddb.describe_time_to_live(TableName=full)["TimeToLiveDescription"]
            if ttl.get("AttributeName") != ttl_attribute or ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                ddb.update_time_to_live(
                    TableName=full, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
                )
        return full

    # -- IAM and Step Functions ---------------------------------------------------------------------------------
    def ensure_role(self, name: str = "service-role") -> str:
        """A role the course's services can assume (emulators do not enforce it; real AWS needs one)."""
        iam = self._client("iam")
        full = self.name(name)
        try:
            return iam.get_role(RoleName=full)["Role"]["Arn"]
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": list(_TRUST_PRINCIPALS)}, "Action": "sts:AssumeRole"}
            ],
        }
        tags = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        return iam.create_role(RoleName=full, AssumeRolePolicyDocument=json.dumps(trust), Tags=tags)["Role"]["Arn"]

    def ensure_state_machine(self, name: str, definition: dict[str, Any] | str, *, type_: str = "STANDARD") -> str:
        """A state machine with exactly this definition (updated in place when it differs)."""
        sfn = self._client("stepfunctions")
        full = self.name(name)
        text = definition if isinstance(definition, str) else json.dumps(definition, indent=2)
        for machine in _paginate(sfn, "list_state_machines", "stateMachines"):
            if machine["name"] == full:
                arn = machine["stateMachineArn"]
                if json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) != json.loads(text):
                    sfn.update_state_machine(stateMachineArn=arn, definition=text)
                return arn
        tags = [{"key": k, "value": v} for k, v in self.tags.items()]
        return sfn.create_state_machine(name=full, definition=text, roleArn=self.ensure_role(), type=type_, tags=tags)[
            "stateMachineArn"
        ]

    # -- inventory and teardown ---------------------------------------------------------------------------------
    def inventory(self) -> list[tuple[str, str]]:
        """(service, name) of everything under this prefix, sorted, for checks and for notebook 00."""
        found: list[tuple[str, str]] = []
        p = self.prefix + "-"
        found += [("sqs", url.rsplit("/", 1)[-1]) for url in self._queue_urls()]
        found += [("sns", arn.rsplit(":", 1)[-1]) for arn in self._topic_arns()]
        events = self._client("events")
        for bus in self._bus_names():
            found.append(("events:bus", bus))
            found += [("events:rule", r["Name"]) for r in _rules(events, bus)]
        found += [("events:rule", r["Name"]) for r in _rules(events, "default") if r["Name"].startswith(p)]
        for kind, names in (("events:connection", self._connections()), ("events:api-destination", self._apids())):
            found += [(kind, n) for n in names]
        found += [("dynamodb", t) for t in self._tables()]
        found += [("stepfunctions", m["name"]) for m in self._machines()]
        found += [("iam:role", r) for r in self._roles()]
        found += [("secretsmanager", s) for s in self._secrets()]
        found += [("events:archive", a) for a in self._archives()]
        found += [("s3", b) for b in self._buckets()]
        return sorted(found)

    def teardown(self) -> int:
        """Delete every resource under the prefix; returns how many were deleted. Safe to call twice."""
        deleted = 0
        events, sqs, sns = self._client("events"), self._client("sqs"), self._client("sns")
        p = self.prefix + "-"
        for archive in self._archives():  # before the buses whose events they keep
            events.delete_archive(ArchiveName=archive)
            deleted += 1
        for bus in [*self._bus_names(), "default"]:
            for rule in _rules(events, bus):
                if bus == "default" and not rule["Name"].startswith(p):
                    continue
                ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]]
                if ids:
                    events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=ids)
                events.delete_rule(Name=rule["Name"], EventBusName=bus)
                deleted += 1
            if bus != "default":
                events.delete_event_bus(Name=bus)
                deleted += 1
        for name in self._apids():
            events.delete_api_destination(Name=name)
            deleted += 1
        for name in self._connections():
            events.delete_connection(Name=name)
            deleted += 1
        for url in self._queue_urls():
            sqs.delete_queue(QueueUrl=url)
            deleted += 1
        for arn in self._topic_arns():
            for sub in _paginate(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=arn):
                if sub["SubscriptionArn"].startswith("arn:"):
                    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
            sns.delete_topic(TopicArn=arn)
            deleted += 1
        ddb = self._client("dynamodb")
        for table in self._tables():
            ddb.delete_table(TableName=table)
            deleted += 1
        sfn = self._client("stepfunctions")
        for machine in self._machines():
            sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
            deleted += 1
        iam = self._client("iam")
        for role in self._roles():
            for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role, PolicyName=policy)
            for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role, PolicyArn=attached["PolicyArn"])
            iam.delete_role(RoleName=role)
            deleted += 1
        secrets = self._client("secretsmanager")
        for secret in self._secrets():
            secrets.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
            deleted += 1
        s3 = self._client("s3")
        for bucket in self._buckets():
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            s3.delete_bucket(Bucket=bucket)
            deleted += 1
        return deleted

    reset = teardown

    # -- listing helpers ----------------------------------------------------------------------------------------
    def _queue_urls(self) -> list[str]:
        urls = self._client("sqs").list_queues(QueueNamePrefix=self.prefix + "-").get("QueueUrls", [])
        return sorted(urls)

    def _topic_arns(self) -> list[str]:
        topics = _paginate(self._client("sns"), "list_topics", "Topics")
        return sorted(t["TopicArn"] for t in topics if t["TopicArn"].rsplit(":", 1)[-1].startswith(self.prefix + "-"))

    def _bus_names(self) -> list[str]:
        buses = self._client("events").list_event_buses(NamePrefix=self.prefix + "-")["EventBuses"]
        return sorted(b["Name"] for b in buses if b["Name"].startswith(self.prefix + "-"))

    def _connections(self) -> list[str]:
        found = self._client("events").list_connections(NamePrefix=self.prefix + "-")["Connections"]
        return sorted(c["Name"] for c in found if c["Name"].startswith(self.prefix + "-"))

    def _apids(self) -> list[str]:
        found = self._client("events").list_api_destinations(NamePrefix=self.prefix + "-")["ApiDestinations"]
        return sorted(d["Name"] for d in found if d["Name"].startswith(self.prefix + "-"))

    def _tables(self) -> list[str]:
        tables = _paginate(self._client("dynamodb"), "list_tables", "TableNames")
        return sorted(t for t in tables if t.startswith(self.prefix + "-"))

    def _machines(self) -> list[dict[str, Any]]:
        machines = _paginate(self._client("stepfunctions"), "list_state_machines", "stateMachines")
        return [m for m in machines if m["name"].startswith(self.prefix + "-")]

    def _roles(self) -> list[str]:
        roles = _paginate(self._client("iam"), "list_roles", "Roles")
        return sorted(r["RoleName"] for r in roles if r["RoleName"].startswith(self.prefix + "-"))

    def _archives(self) -> list[str]:
        found = self._client("events").list_archives(NamePrefix=self.prefix + "-").get("Archives", [])
        return sorted(a["ArchiveName"] for a in found if a["ArchiveName"].startswith(self.prefix + "-"))

    def _buckets(self) -> list[str]:
        found = self._client("s3").list_buckets().get("Buckets", [])
        return sorted(b["Name"] for b in found if b["Name"].startswith(self.prefix + "-"))

    def _secrets(self) -> list[str]:
        found = _paginate(self._client("secretsmanager"), "list_secrets", "SecretList")
        return sorted(s["Name"] for s in found if s["Name"].startswith(self.prefix + "-"))


def check_learner(name: str) -> str:
    if not LEARNER_RE.match(name):
        raise ValueError(
            f"learner name {name!r} must be 1-12 lower-case letters and digits, starting with a letter, "
            "and not a course prefix such as nb06 or lab01"
        )
    return name


def learner_from_env() -> str | None:
    """The learner a classroom's hub named for this kernel, or None (a laptop, CI)."""
    name = os.environ.get(LEARNER_ENV, "").strip()
    return check_learner(name) if name else None


def _same_attr(current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if current.startswith("{") and wanted.startswith("{"):
        return {k: str(v) for k, v in json.loads(current).items()} == {k: str(v) for k, v in json.loads(wanted).items()}
    return current == wanted


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]
    return client.__getattribute__(operation)(**kwargs).get(key, [])


def _rules(events: Any, bus: str) -> list[dict[str, Any]]:
    return _paginate(events, "list_rules", "Rules", EventBusName=bus)


def teardown_all(prefixes: list[str] | None = None, backend: backend_mod.Backend | None = None) -> dict[str, int]:
    """Reset the course: tear down the given notebook prefixes (default: every course prefix found)."""
    b = backend or backend_mod.current()
    if prefixes is None:
        prefixes = course_prefixes(b)
    return {p: Resources(p, b, learner="").teardown() for p in prefixes}


def course_prefixes(b: backend_mod.Backend, learner: str | None = None) -> list[str]:
    """The course prefixes in use (``nb06``, ``lab01``, a classroom's ``alice-lab01``), from resource names.

    ``learner`` keeps only that learner's prefixes (the classroom resets one learner on a shared backend).
    """
    names = [url.rsplit("/", 1)[-1] for url in b.client("sqs").list_queues().get("QueueUrls", [])]
    names += _paginate(b.client("dynamodb"), "list_tables", "TableNames")
    names += [m["name"] for m in _paginate(b.client("stepfunctions"), "list_state_machines", "stateMachines")]
    names += [x["Name"] for x in b.client("events").list_event_buses()["EventBuses"]]
    found = set()
    for n in names:
        m = re.match(r"^((?:wb-)?([a-z][a-z0-9]{0,11}-)?(?:nb|lab)\d{2}[a-z]?)-", n)
        if m and (learner is None or m.group(2) == f"{learner}-"):
            found.add(m.group(1).removeprefix("wb-"))
    return sorted(found)
