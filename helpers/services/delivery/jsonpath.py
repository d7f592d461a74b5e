"""The JSONPath subset EventBridge parameter values use (``$.detail.customID``), and how a value is sent."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z0-9_$@-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
MISSING = object()


def jsonpath(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$.detail.customID``, ``$.items[0].id``, ``$['odd key']``).

    Returns ``MISSING`` when a step does not exist. Filters and wildcards are not supported: EventBridge parameter
    values name one field.
    """
    if path == "$":
        return document
    if not path.startswith("$"):
        raise ValueError(f"{path!r} is not a JSONPath (it must start with '$')")
    position, value = 1, document
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            raise ValueError(f"unsupported JSONPath {path!r} at {path[position:]!r}")
        name, index, quoted1, quoted2 = match.groups()
        key: Any = int(index) if index is not None else (name or quoted1 or quoted2 or "")
        if isinstance(key, int):
            value = value[key] if isinstance(value, list) and -len(value) <= key < len(value) else MISSING
        else:
            value = value.get(key, MISSING) if isinstance(value, dict) else MISSING
        if value is MISSING:
            return MISSING
        position = match.end()
    return value


def resolve_value(template: str, event: Mapping[str, Any]) -> str | None:
    """A parameter value as EventBridge sends it: static text as is, ``$...`` looked up in the event.

    A JSONPath that finds nothing gives ``None`` (the parameter is left out: AWS does not document this case).
    Objects and arrays are sent as compact JSON, strings as they are, other scalars as JSON text (``true``, ``12``).
    """
    if not template.startswith("$"):
        return template
    value = jsonpath(event, template)
    if value is MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
