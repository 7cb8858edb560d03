"""The local development stack: PostgreSQL, Redis (primary, 2 replicas, 3 Sentinels) and a
MongoDB-wire server, all on loopback, with their data, logs and pid files under one state
folder (``.orgbase/`` by default). ``orgbase services up|down|status`` drives it; tests use
it to start private stacks for fault drills.
"""

from devstack.layout import StackLayout
from devstack.stack import LocalStack

__all__ = ["LocalStack", "StackLayout"]
