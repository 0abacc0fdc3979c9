"""The sandbox's FNG: the journal, budget planning and eProcurement interfaces, each call
checked for a SIMS ID token and both keys of a database, over state kept in SQLite."""
