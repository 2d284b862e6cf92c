"""spard.client: the Python SDK of the SPARD service (sync, async and in-process)."""
