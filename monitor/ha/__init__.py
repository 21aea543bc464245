"""High availability: which replica does the leader's work, and that only one daemon uses a state.

- `lease`: on PostgreSQL, the leader lease with its fencing token (any number of replicas).
- `single_instance`: on SQLite, a lock file beside the state file (one daemon per file).
"""

from monitor.ha.lease import LeaderChange, LeaderLease, connect_postgres, unfenced
from monitor.ha.single_instance import InstanceLock, SingleInstanceError

__all__ = ["InstanceLock", "LeaderChange", "LeaderLease", "SingleInstanceError", "connect_postgres",
           "unfenced"]
