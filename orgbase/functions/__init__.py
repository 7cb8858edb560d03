"""Functions: the operator's own Python code at ``/functions/v1/{name}``, run in worker
processes with a context that reaches data only as the caller (docs/functions.md).

Keep this package's ``__init__`` empty of imports: worker processes import
``orgbase.functions.worker`` and must not load the gateway's modules.
"""
