"""The decorator form: the function keeps its plain return value; replay information is one call away.

::

    @idempotent(idem, payload_arg="order")
    def charge(order): ...

    charge(order)                 # the value (first time or replayed)
    charge.outcome(order)         # the Outcome: .value, .replayed, .source, .round_trips
    last_outcome()                # the Outcome of the latest protected call in this thread / context

The key is never derived from the function's name, so renaming or moving the function keeps its records.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .config import WaitPolicy
    from .core import Idempotency, Outcome

_LAST: contextvars.ContextVar[Outcome | None] = contextvars.ContextVar("idempotency_last_outcome", default=None)


def last_outcome() -> Outcome | None:
    """The Outcome of the most recent decorated call in the current thread (or asyncio task)."""
    return _LAST.get()


def idempotent(
    idem: Idempotency,
    fn: Callable[..., Any] | None = None,
    *,
    payload_arg: str | int = 0,
    token_arg: str | None = None,
    return_outcome: bool = False,
    wait: WaitPolicy | bool | None = None,
) -> Any:
    """Protect ``fn`` with ``idem``. ``payload_arg`` names (or indexes) the parameter holding the payload;
    ``token_arg`` optionally names a parameter carrying the client's token. With ``return_outcome=True`` the
    decorated function returns the :class:`Outcome` instead of the plain value."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):
            raise ConfigurationError(f"{func.__qualname__} is async; this library protects synchronous callables")
        signature = inspect.signature(func)
        names = list(signature.parameters)
        if isinstance(payload_arg, int):
            if not 0 <= payload_arg < len(names):
                raise ConfigurationError(f"{func.__qualname__} has no positional parameter #{payload_arg}")
            payload_name = names[payload_arg]
        else:
            payload_name = payload_arg
        for label, name in (("payload_arg", payload_name), ("token_arg", token_arg)):
            if name is not None and name not in signature.parameters:
                raise ConfigurationError(f"{label}={name!r}: {func.__qualname__} has no parameter {name!r}")

        def run(*args: Any, **kwargs: Any) -> Outcome:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            payload = bound.arguments[payload_name]
            token = bound.arguments.get(token_arg) if token_arg else None
            outcome = idem.execute(payload, lambda: func(*args, **kwargs), token=token, wait=wait)
            _LAST.set(outcome)
            return outcome

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome = run(*args, **kwargs)
            return outcome if return_outcome else outcome.value

        wrapper.outcome = run  # type: ignore[attr-defined]
        wrapper.idempotency = idem  # type: ignore[attr-defined]
        return wrapper

    return decorate(fn) if fn is not None else decorate
