"""Tables, the engine and migrations."""

from gateway.store.engine import Store, create_store

__all__ = ["Store", "create_store"]
