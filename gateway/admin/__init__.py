"""The operators' HTTP API (a sub-application under /admin/) and its bearer tokens."""
