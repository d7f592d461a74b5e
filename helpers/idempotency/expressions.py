"""JMESPath expressions, checked when the configuration is built and run with typed errors.

Every name an expression calls must exist when the configuration is built: JMESPath's built-ins, plus the three
functions Powertools for AWS Lambda adds (``powertools_json``, ``powertools_base64``, ``powertools_base64_gzip``), so
that a Powertools ``event_key_jmespath`` or ``payload_validation_jmespath`` works here as written. An unknown name or
a wrong number of arguments is an :class:`UnknownFunction` / :class:`ConfigurationError` at start-up, never a raw
jmespath error on the first request (in an SQS batch that would fail every message until the dead-letter queue).

A search that fails on a given payload (a type error inside a function, text that is not base64 or JSON) raises
:class:`MalformedPayload` (400) naming the option and the expression.

Differences from Powertools' functions, on purpose:

- ``powertools_json(x)`` returns ``x`` unchanged when it is already parsed (not text): the fields listed in
  ``json_string_fields`` (API Gateway's ``body`` by default) are parsed before any expression runs, so
  ``powertools_json(body)`` reads the same either way;
- ``powertools_base64_gzip`` stops at :data:`MAX_DECOMPRESSED_BYTES`, so a small compressed payload cannot expand
  into gigabytes in the key resolver.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import jmespath
from jmespath import functions as jmespath_functions
from jmespath.exceptions import JMESPathError

from .errors import ConfigurationError, MalformedPayload, UnknownFunction

#: The most ``powertools_base64_gzip`` will inflate, in bytes (a Lambda payload is at most 6 MB before compression).
MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024
POWERTOOLS_FUNCTIONS = ("powertools_json", "powertools_base64", "powertools_base64_gzip")


def _text(value: Any, function: str) -> str | bytes:
    if isinstance(value, (str, bytes, bytearray)):
        return bytes(value) if isinstance(value, bytearray) else value
    raise MalformedPayload(f"{function}() needs text (a base64 string), got a {type(value).__name__}")


def _b64decode(value: Any, function: str) -> bytes:
    try:
        return base64.b64decode(_text(value, function), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedPayload(f"{function}() got text that is not base64 ({exc})") from None


def _utf8(data: bytes, function: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayload(f"{function}() decoded bytes that are not UTF-8 text ({exc})") from None


def _gunzip(data: bytes, function: str) -> bytes:
    """Every gzip member of ``data``, inflated to at most MAX_DECOMPRESSED_BYTES."""
    out = bytearray()
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=31)
            out += inflater.decompress(rest, MAX_DECOMPRESSED_BYTES + 1 - len(out))
            if len(out) > MAX_DECOMPRESSED_BYTES or inflater.unconsumed_tail:
                raise MalformedPayload(f"{function}() would inflate past {MAX_DECOMPRESSED_BYTES} bytes; refused")
            if not inflater.eof:
                raise MalformedPayload(f"{function}() got a truncated gzip stream")
            rest = inflater.unused_data
    except zlib.error as exc:
        raise MalformedPayload(f"{function}() got data that is not gzip ({exc})") from None
    return bytes(out)


class Functions(jmespath_functions.Functions):  # type: ignore[misc]  # jmespath ships no types
    """JMESPath's built-ins plus Powertools' three functions (same names, same results on text)."""

    @jmespath_functions.signature({"types": []})  # type: ignore[untyped-decorator]
    def _func_powertools_json(self, value: Any) -> Any:
        if not isinstance(value, (str, bytes, bytearray)):
            return value  # already parsed (json_string_fields)
        try:
            return json.loads(value)
        except RecursionError:
            raise MalformedPayload("powertools_json() got JSON nested too deep to read") from None
        except ValueError as exc:
            raise MalformedPayload(f"powertools_json() got text that is not JSON ({exc})") from None

    @jmespath_functions.signature({"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_powertools_base64(self, value: Any) -> str:
        return _utf8(_b64decode(value, "powertools_base64"), "powertools_base64")

    @jmespath_functions.signature({"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_powertools_base64_gzip(self, value: Any) -> str:
        name = "powertools_base64_gzip"
        return _utf8(_gunzip(_b64decode(value, name), name), name)


_FUNCTIONS = Functions()
_OPTIONS = jmespath.Options(custom_functions=_FUNCTIONS)
_TABLE: Mapping[str, Any] = _FUNCTIONS.FUNCTION_TABLE


def _calls(node: Any) -> Iterator[tuple[str, int]]:
    """Every function call in a parsed expression: (name, number of arguments)."""
    if not isinstance(node, Mapping):
        return
    children = node.get("children") or []
    if node.get("type") == "function_expression":
        yield str(node.get("value")), len(children)
    for child in children:
        yield from _calls(child)


def _check_call(option: str, text: str, name: str, given: int) -> None:
    entry = _TABLE.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(_TABLE), n=1)
        hint = f" Did you mean {close[0]}()?" if close else ""
        raise UnknownFunction(option, text, name, hint)
    signature = entry["signature"]
    variadic = bool(signature) and bool(signature[-1].get("variadic"))
    expected = len(signature)
    if given < expected or (given > expected and not variadic):
        wanted = f"at least {expected}" if variadic else str(expected)
        raise ConfigurationError(
            f"{option}={text!r}: {name}() takes {wanted} argument(s), the expression gives {given}"
        )


class Expression:
    """A JMESPath expression of one configuration option, compiled and checked once."""

    def __init__(self, option: str, text: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError(f"{option}={text!r}: give a JMESPath expression such as 'order_id', or None")
        try:
            self._parsed = jmespath.compile(text)
        except JMESPathError as exc:
            raise ConfigurationError(f"{option}={text!r} is not a valid JMESPath expression: {exc}") from None
        for name, given in _calls(self._parsed.parsed):
            _check_call(option, text, name, given)
        self.option = option
        self.text = text

    def search(self, data: Any) -> Any:
        """The expression's result on ``data`` (plain data: dicts, lists, scalars); MalformedPayload if it fails."""
        try:
            return self._parsed.search(data, options=_OPTIONS)
        except MalformedPayload as exc:
            raise MalformedPayload(f"{self.option}={self.text!r}: {exc}") from None
        except (JMESPathError, TypeError, ValueError) as exc:
            raise MalformedPayload(
                f"{self.option}={self.text!r} cannot be evaluated on this payload: {type(exc).__name__}: {exc}"
            ) from None

    def __repr__(self) -> str:
        return f"Expression({self.option}={self.text!r})"
