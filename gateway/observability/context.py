"""Per-request context, carried by contextvars (never thread-locals) into logs and FNG calls."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from typing import Final

request_id: ContextVar[str] = ContextVar("request_id", default="-")
school: ContextVar[str] = ContextVar("school", default="-")

_ACCEPTABLE_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_request_id(offered: str | None) -> str:
    """Keep a caller's request id if it is sane, otherwise make one."""
    if offered and _ACCEPTABLE_ID.match(offered):
        return offered
    return os.urandom(16).hex()  # a random UUID's 128 bits, without building a UUID
