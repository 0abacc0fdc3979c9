"""The FNG REST client and its error mapping."""

from gateway.fng.client import FngClient, FngResponse

__all__ = ["FngClient", "FngResponse"]
