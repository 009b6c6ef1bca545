"""OpenAPI 3.1 description of the portal API (served at ``/openapi.json``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ivr.api.openapi_client import CLIENT_PATHS, CLIENT_SECURITY, CLIENT_TOKEN, PUBLIC_VERIFICATION
from ivr.numbers import REASONS

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["number_not_eligible"]},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "reason": {"type": "string", "enum": list(REASONS)},
                "messages": {"$ref": "#/components/schemas/Messages"},
                "current_status": {"type": "string"},
            },
        }
    },
}

_VERIFICATION = {
    "type": "object",
    "required": ["id", "status", "phone_number", "dial_number", "created_at", "expires_at"],
    "properties": {
        "id": {"type": "string", "examples": ["vrf_3q2Jc6m1b6yHgkQ0l8vZ1A"]},
        "status": {"type": "string", "enum": ["pending", "verified", "expired", "cancelled"]},
        "phone_number": {"type": "string", "description": "E.164", "examples": ["+819012345678"]},
        "dial_number": {
            "type": "object",
            "description": "The number the holder must call, with caller ID shown.",
            "properties": {
                "e164": {"type": "string", "examples": ["+81355550101"]},
                "national": {"type": "string", "examples": ["03-5555-0101"]},
            },
        },
        "reference": {"type": ["string", "null"]},
        "callback_url": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "verified": {
            "type": "object",
            "description": "Present once verified: when, by which call, over which trunk.",
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "call_id": {"type": "string", "description": "Asterisk channel id"},
                "trunk": {"type": "string"},
                "caller_number": {"type": "string", "description": "as the trunk sent it"},
            },
        },
        "ended_at": {"type": "string", "format": "date-time"},
        "cancel_reason": {"type": "string", "enum": ["cancelled", "superseded"]},
        "client_token": CLIENT_TOKEN,
    },
}


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: str, status: str = "200") -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


_ID_FROM_BODY = "$response.body#/id"
_AUTH_ERRORS = {"401": _err("missing or invalid bearer token")}
_OPS_ERRORS = {"401": _err("missing or invalid ops token (portal tokens are refused here)")}


# 1 to 65535, no leading zero.
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"


def callback_url_pattern(hosts: Iterable[str]) -> str:
    """The allow-list as a pattern: http(s) to one of the portals' callback_hosts."""
    names = "|".join(re.escape(h) for h in sorted(set(hosts)))
    return rf"^https?://({names})(:{_PORT})?([/?#][^\\\s]*)?$"


def spec(
    callback_hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    ttl: tuple[int, int, int] = (30, 180, 900),
) -> dict[str, Any]:
    """The document. ``callback_hosts``: every portal's allow-list (the pattern a
    ``callback_url`` must match; a host of another portal's list still gets 422);
    ``ttl``: the configured minimum, default and maximum of ``ttl_seconds``."""
    pattern = callback_url_pattern(callback_hosts)
    min_ttl, default_ttl, max_ttl = ttl
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Phone-number authentication gateway: portal API",
            "version": "1",
            "description": (
                "Create a verification, show the holder `dial_number`, and learn the "
                "result by long poll (`?wait=N`) or signed callback. Errors are "
                '`{"error": {"code", "message"}}`. Callbacks: on every terminal '
                "transition, POST `callback_url` (or the portal's default) with "
                '`{"type": "verification.verified"|"verification.expired"|'
                '"verification.cancelled", "timestamp", "data": <Verification>}`, signed '
                "the Standard Webhooks way (webhook-id, webhook-timestamp, "
                "webhook-signature), at least once."
            ),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/verifications": {
                "post": {
                    "summary": "Create a verification",
                    "operationId": "createVerification",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                            "description": "1 to 255 printable characters (longer: 422 "
                            "invalid_request; headers past 32 KiB: 400). Same key and body "
                            "within 24 h returns the same verification (header "
                            "Idempotent-Replayed: true); same key, other body: 422 "
                            "idempotency_key_reused.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/CreateVerification"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            **_ok("created", "Verification", "201")["201"],
                            "links": {
                                name: {
                                    "operationId": op,
                                    "parameters": {"id": "$response.body#/id"},
                                }
                                for name, op in (
                                    ("GetVerification", "getVerification"),
                                    ("CancelVerification", "cancelVerification"),
                                    ("VerificationAttempts", "verificationAttempts"),
                                )
                            },
                        },
                        "400": _err("invalid_json"),
                        **_AUTH_ERRORS,
                        "413": _err("payload_too_large"),
                        "415": _err("unsupported_media_type"),
                        "422": _err(
                            "invalid_request (including a callback_url that could never be "
                            "delivered to), number_not_eligible (with reason), "
                            "idempotency_key_reused, callback_url_not_allowed (its host is "
                            "not on the portal's callback_hosts allow-list)"
                        ),
                        "503": _err(
                            "no_dial_numbers; store_unavailable (nothing saved; Retry-After)"
                        ),
                    },
                }
            },
            "/v1/verifications/{id}": {
                "get": {
                    "summary": "Get a verification; with wait=N, a long poll",
                    "operationId": "getVerification",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "wait",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "number", "minimum": 0},
                            "description": "Seconds to wait for a change while pending "
                            "(capped by the server's api.max_wait).",
                        },
                    ],
                    "responses": {
                        **_ok("the verification", "Verification"),
                        **_AUTH_ERRORS,
                        "404": _err("not_found"),
                        "422": _err("invalid_request (bad wait)"),
                    },
                }
            },
            "/v1/verifications/{id}/cancel": {
                "post": {
                    "summary": "Cancel a pending verification",
                    "operationId": "cancelVerification",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        **_ok("cancelled", "Verification"),
                        **_AUTH_ERRORS,
                        "404": _err("not_found"),
                        "409": _err("not_pending (already verified, expired or cancelled)"),
                        "503": _err("store_unavailable (nothing changed; Retry-After)"),
                    },
                }
            },
            "/v1/verifications/{id}/attempts": {
                "get": {
                    "summary": "The calls that tried this verification, and their outcome",
                    "operationId": "verificationAttempts",
                    "description": "Callers masked; only the portal that created the "
                    "verification sees it (another portal gets 404).",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": '{"attempts": [<Call>, ...]}'},
                        **_AUTH_ERRORS,
                        "404": _err("not_found"),
                    },
                }
            },
            "/v1/phone-numbers/check": {
                "post": {
                    "summary": "May this number authenticate? (for the registration form)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["phone_number"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "phone_number": {"type": "string", "maxLength": 64}
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        **_ok("the verdict", "NumberCheck"),
                        "400": _err("invalid_json"),
                        **_AUTH_ERRORS,
                        "422": _err("invalid_request"),
                    },
                }
            },
            "/admin/callbacks": {
                "get": {
                    "summary": "Callback events (ops token)",
                    "security": [{"ops": []}],
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "enum": ["pending", "delivered", "failed", "no_url"],
                            },
                        }
                    ],
                    "responses": {
                        "200": {"description": '{"callbacks": [...]}'},
                        **_OPS_ERRORS,
                        "422": _err("invalid_request (unknown status)"),
                    },
                }
            },
            "/admin/calls": {
                "get": {
                    "summary": "Calls and their outcome, newest first (ops token)",
                    "security": [{"ops": []}],
                    "parameters": [
                        {
                            "name": "since",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "number"},
                            "description": "calls started at or after this time (POSIX seconds)",
                        },
                        {
                            "name": "outcome",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "enum": [
                                    "verified",
                                    "withheld",
                                    "not_eligible",
                                    "no_pending",
                                    "rejected_source",
                                    "failed",
                                ],
                            },
                        },
                        {
                            "name": "trunk",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
                        },
                    ],
                    "responses": {
                        "200": {"description": '{"calls": [...]} (callers masked)'},
                        **_OPS_ERRORS,
                        "422": _err("invalid_request"),
                    },
                }
            },
            "/admin/callbacks/{id}/retry": {
                "post": {
                    "summary": "Deliver one callback again (ops token)",
                    "security": [{"ops": []}],
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "requeued"},
                        **_OPS_ERRORS,
                        "404": _err("not_found"),
                        "409": _err("already_delivered (nothing to retry)"),
                    },
                }
            },
            "/admin/callbacks/retry-failed": {
                "post": {
                    "summary": "Deliver every failed callback again (ops token)",
                    "security": [{"ops": []}],
                    "responses": {"200": {"description": '{"requeued": N}'}, **_OPS_ERRORS},
                }
            },
            "/admin/trunks": {
                "get": {
                    "summary": "Each trunk's endpoint, contacts and registration (ops token)",
                    "security": [{"ops": []}],
                    "responses": {
                        "200": {"description": '{"trunks": [...]}'},
                        **_OPS_ERRORS,
                        "503": _err("not_loaded (AMI has not answered yet)"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {"200": {"description": "text exposition format"}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Alive",
                    "security": [],
                    "responses": {"200": {"description": "alive"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Store and Asterisk reachable",
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
            **CLIENT_PATHS,
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a portal token"},
                "ops": {"type": "http", "scheme": "bearer", "description": "an ops token"},
                **CLIENT_SECURITY,
            },
            "schemas": {
                "Error": _ERROR,
                "Verification": _VERIFICATION,
                "PublicVerification": PUBLIC_VERIFICATION,
                "Messages": {
                    "type": "object",
                    "properties": {"ja": {"type": "string"}, "en": {"type": "string"}},
                },
                "CreateVerification": {
                    "type": "object",
                    "required": ["phone_number"],
                    "additionalProperties": False,
                    "properties": {
                        "phone_number": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 64,
                            "pattern": r"\S",  # not only spaces
                            "examples": ["090-1234-5678"],
                        },
                        "reference": {"type": ["string", "null"], "maxLength": 255},
                        "callback_url": {
                            "type": ["string", "null"],
                            "format": "uri",
                            "maxLength": 2048,
                            "pattern": pattern,
                            "description": "http or https, no user name or password, a "
                            "valid host and port; the host must be on the portal's "
                            "callback_hosts allow-list. Default: the portal's callback_url.",
                        },
                        "ttl_seconds": {
                            "type": ["integer", "null"],
                            "minimum": min_ttl,
                            "maximum": max_ttl,
                            "default": default_ttl,
                            "description": "null or absent: the default",
                        },
                    },
                },
                "NumberCheck": {
                    "type": "object",
                    "properties": {
                        "eligible": {"type": "boolean"},
                        "e164": {"type": ["string", "null"]},
                        "national": {"type": ["string", "null"]},
                        "type": {"type": ["string", "null"]},
                        "reason": {"type": ["string", "null"], "enum": [*REASONS, None]},
                        "message": {
                            "oneOf": [{"$ref": "#/components/schemas/Messages"}, {"type": "null"}]
                        },
                    },
                },
            },
        },
    }
