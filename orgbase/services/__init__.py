"""The data services, each driven by an OrgContext: postgres, mongo, redis."""
