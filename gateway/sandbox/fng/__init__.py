"""The sandbox's FNG: the journal, budget planning and eProcurement interfaces, each call
checked for a SIMS ID token and both keys of a database, over state kept in SQLite.

Each interface has its calls (``*_api``), FMS 6's rules (``*_rules``) and the documents
it answers with (``*_documents``); a module named like a part of the state holds that
part and its SQL (``journals`` is ``state.journals``). ``access`` checks every call.
"""
