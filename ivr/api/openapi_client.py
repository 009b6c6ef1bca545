"""OpenAPI: the browser-facing part (client tokens, the widget, QR codes)."""

from __future__ import annotations

from typing import Any

CLIENT_TOKEN = {
    "type": "string",
    "description": "For the holder's login page only: reads this verification's public "
    "status at /client/v1/verifications/{id} (Authorization: Bearer, or ?token=) from "
    "the portal's browser_origins, until expires_at. Cannot create, cancel or read "
    "anything else. Never give a page the portal's API token.",
    "examples": ["ct1.1796000000.pV0cXq3mFz6cI1v1c2w9sA"],
}

_HINT = {
    "type": ["object", "null"],
    "description": "The newest call to the dial number since creation that verified "
    "nothing. The dial number is shared, so it may be someone else's: show it as "
    '"if that was you" guidance.',
    "properties": {
        "kind": {
            "type": "string",
            "enum": ["withheld", "payphone", "unavailable", "not_eligible", "other_number"],
        },
        "at": {"type": "string", "format": "date-time"},
    },
}

PUBLIC_VERIFICATION = {
    "type": "object",
    "required": ["id", "status", "dial_number", "phone_number_masked", "expires_in", "hint"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "verified", "expired", "cancelled"]},
        "dial_number": {
            "type": "object",
            "properties": {
                "e164": {"type": "string"},
                "national": {"type": "string", "examples": ["03-5555-0101"]},
                "tel_uri": {"type": "string", "examples": ["tel:+81355550101"]},
            },
        },
        "phone_number_masked": {"type": "string", "examples": ["090-****-5678"]},
        "expires_at": {"type": "string", "format": "date-time"},
        "expires_in": {
            "type": "integer",
            "description": "Seconds left by the gateway's clock (0 once settled)",
        },
        "hint": _HINT,
        "verified_at": {"type": "string", "format": "date-time"},
    },
}


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

CLIENT_PATHS: dict[str, Any] = {
    "/client/v1/verifications/{id}": {
        "get": {
            "summary": "A verification's public status, for its login page",
            "description": "CORS: answered to the origins in the portal's browser_origins "
            "(403 origin_not_allowed otherwise). With wait=N (at most 25) a long poll that "
            "returns when the status changes or a new hint appears.",
            "operationId": "getClientVerification",
            "security": [{"clientToken": []}],
            "parameters": [
                _ID,
                {"name": "wait", "in": "query", "schema": {"type": "number", "minimum": 0}},
                {
                    "name": "seen_hint",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "hint.at already shown: wait for a newer one",
                },
                {
                    "name": "token",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "the client token, where a header cannot be sent",
                },
            ],
            "responses": {
                "200": {
                    "description": "the public view",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/PublicVerification"}
                        }
                    },
                },
                "401": _err("invalid_client_token (reason: invalid or expired)"),
                "403": _err("origin_not_allowed"),
                "404": _err("not_found"),
            },
        },
        "options": {
            "summary": "CORS preflight (allowed origins only)",
            "security": [],
            "parameters": [
                _ID,
                {"name": "Origin", "in": "header", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {
                "204": {"description": "allowed"},
                "400": _err("bad_request (no Origin: not a preflight)"),
                "403": _err("origin_not_allowed"),
                "404": _err("not_found"),
            },
        },
    },
    "/widget/v1/ivr-widget.js": {
        "get": {
            "summary": "The login-page widget (docs/portal-integration.md)",
            "security": [],
            "responses": {"200": {"description": "JavaScript"}},
        }
    },
    "/widget/v1/qr/{e164}.svg": {
        "get": {
            "summary": "QR code of tel:<e164>, for this gateway's dial numbers only",
            "security": [],
            "parameters": [
                {"name": "e164", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {"200": {"description": "SVG"}, "404": {"description": "not ours"}},
        }
    },
}

CLIENT_SECURITY = {
    "clientToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "a verification's client_token (ct1....)",
    }
}
