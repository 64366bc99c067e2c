"""The read side: every read that the API, the pages and the CLI show, one function each, over the store's tables.

Each view takes the caller's connection (or unit of work), so that an entry point can put the access check, the read
and its access-log row in one transaction. Views decide nothing about who may see what: ``pathway.policy`` does.
"""
