"""Schools, databases, keys, accounts and secrets at rest."""
