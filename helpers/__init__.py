"""The package the notebooks and labs import, in floors: each imports only from the floors below it.

``aws`` (where calls go) -> ``instruments`` (inject, count, record, draw) -> ``idempotency`` (the copyable library)
-> ``services`` (what AWS or a partner would run) -> ``chapters`` (what one notebook runs) -> ``labs`` (the checks).
``notebook`` (a notebook's first and last cells), ``course`` (the course map) and ``progress`` (the learner's records
of setups and lab checks) sit beside them.
"""
