"""Domain errors. Each carries its data; the API middleware maps them to JSON errors."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    status = 404
    code = "not_found"


class NotPending(DomainError):
    status = 409
    code = "not_pending"


class NumberNotEligible(DomainError):
    status = 422
    code = "number_not_eligible"


class InvalidRequest(DomainError):
    status = 422
    code = "invalid_request"


class IdempotencyConflict(DomainError):
    status = 422
    code = "idempotency_key_reused"


class NoDialNumbers(DomainError):
    status = 503
    code = "no_dial_numbers"


class RateLimited(DomainError):
    """A limit was hit; ``retry_after`` (seconds) goes out as the Retry-After header."""

    status = 429
    code = "rate_limited"

    @property
    def retry_after(self) -> float:
        value = self.details.get("retry_after", 1.0)
        return float(value) if isinstance(value, int | float) else 1.0
