"""The FNG REST client, its error mapping, and FNG's answers read as documents."""

from gateway.fng.client import FngClient
from gateway.fng.documents import FngAnswerUnusable, FngDeclined

__all__ = ["FngAnswerUnusable", "FngClient", "FngDeclined"]
