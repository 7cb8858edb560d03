"""Per-org limits (requests per minute, concurrency, timeouts, rows, storage, connections)
and usage metering: the effective limits and their cache, the admission of each request,
the usage counters' flush and rollup, and their routes."""
