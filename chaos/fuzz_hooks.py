"""schemathesis hooks for the fuzz row (``SCHEMATHESIS_HOOKS=chaos.fuzz_hooks``)."""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    """A fresh Idempotency-Key on every request that carries one: reusing a key with
    another body is a 422 by design (a rule of state the API tests cover), not a
    finding of a request checked on its own."""
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
