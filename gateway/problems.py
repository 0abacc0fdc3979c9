"""The ``application/problem+json`` document (RFC 9457) that every HTTP problem answer carries.

Both the outer middleware and the admin API answer with it, so its members are built here once.
"""

from __future__ import annotations

import json
from typing import Any, Final

from gateway.errors import GatewayError

PROBLEM_JSON: Final = "application/problem+json"


def problem_json(error: GatewayError, request_id: str, **extensions: Any) -> bytes:
    """The problem document for ``error``, its extension members (such as the admin API's
    ``errors``) after the standard ones."""
    problem: dict[str, Any] = {
        "type": f"urn:fng-gateway:error:{error.code}",
        "title": error.fault_string,
        "status": error.http_status,
        "code": error.code,
        "requestId": request_id,
        **extensions,
    }
    return json.dumps(problem).encode()
