"""The one conversion of a payload to plain data, done before any expression or hash sees it.

Keys, tokens, tenants and fingerprints are all read from what :func:`to_plain` returns, so equal data gives the same
key and fingerprint whatever its Python shape: a dict, any Mapping, a dataclass, a pydantic (v2) model, an object
with ``to_dict()``, a tuple, or any nesting of them. Without it a JMESPath expression sees an object it cannot look
into and selects nothing (a key "missing", a fingerprint of ``null`` that every tampered request matches).

Containers become dicts and lists; leaves (str, numbers, Decimal, datetime, UUID, Enum, sets, bytes...) stay as they
are: the canonical JSON form (keys.py) decides how each is written, and refuses one with no JSON form only when an
expression selects it. No library is imported: dataclasses by ``dataclasses.fields``, pydantic models by their
``model_dump`` method, other objects by ``to_dict``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

from .errors import PayloadNotSerializable

#: The deepest nesting a payload may have: deeper is refused with a typed error, never a RecursionError.
MAX_DEPTH = 100

#: Leaves the canonical form knows (or refuses on purpose, like a dict holding them would be): taken from a pydantic
#: model's Python dump as they are, so a model and a dict holding the same values hash alike.
_CANONICAL_LEAVES = (
    str,
    int,
    float,
    Decimal,
    Enum,
    uuid.UUID,
    dt.date,
    dt.time,
    set,
    frozenset,
    bytes,
    bytearray,
)


def to_plain(value: Any, path: str = "payload") -> Any:
    """``value`` as plain data (dicts, lists and leaves); the same object when there was nothing to convert."""
    return _plain(value, path, 0)


def _plain(value: Any, path: str, depth: int) -> Any:
    if value is None or isinstance(value, (str, int, float)):
        return value
    if depth > MAX_DEPTH:
        raise PayloadNotSerializable(f"{path} is nested more than {MAX_DEPTH} levels deep; flatten it")
    if isinstance(value, Mapping):
        changed = not isinstance(value, dict)
        out = {}
        for k, v in value.items():
            converted = _plain(v, f"{path}.{k}", depth + 1)
            changed = changed or converted is not v
            out[k] = converted
        return out if changed else value
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        unchanged = isinstance(value, list) and all(a is b for a, b in zip(items, value, strict=True))
        return value if unchanged else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _plain(fields, path, depth + 1)
    if callable(getattr(value, "model_dump", None)):
        return _plain(_model_data(value, path), path, depth + 1)
    if callable(getattr(value, "to_dict", None)):
        return _plain(_called(value, "to_dict", path), path, depth + 1)
    return value


def _called(value: Any, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return getattr(value, method)(**kwargs)
    except RecursionError:
        raise PayloadNotSerializable(f"{path} is nested too deep to convert ({type(value).__name__})") from None
    except (TypeError, ValueError) as exc:  # pydantic's circular-reference and serialisation errors are ValueErrors
        raise PayloadNotSerializable(
            f"{path} ({type(value).__name__}) could not be converted with {method}(): {exc}"
        ) from None


def _model_data(model: Any, path: str) -> Any:
    """A pydantic model's data: its Python dump, with the model's own JSON form only for leaves the canonical form
    does not know (URLs, IP addresses, paths...). Decimal, datetime, UUID and Enum stay Python values, so they are
    written exactly as the same values in a dict are (the JSON dump would turn a Decimal into a string)."""
    python_form = _called(model, "model_dump", path)
    try:
        json_form = model.model_dump(mode="json")
    except Exception:  # a value the model cannot write as JSON: the Python form alone decides
        return python_form
    return _merge(python_form, json_form)


def _merge(python_form: Any, json_form: Any) -> Any:
    if python_form is None or isinstance(python_form, (bool, *_CANONICAL_LEAVES)):
        return python_form
    if isinstance(python_form, Mapping):
        other = json_form if isinstance(json_form, Mapping) else {}
        return {k: _merge(v, other.get(k if isinstance(k, str) else str(k))) for k, v in python_form.items()}
    if isinstance(python_form, (list, tuple)):
        others = list(json_form) if isinstance(json_form, list) and len(json_form) == len(python_form) else None
        return [_merge(v, others[i] if others is not None else None) for i, v in enumerate(python_form)]
    return json_form if json_form is not None else python_form
