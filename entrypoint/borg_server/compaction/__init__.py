"""Compacting a client's repository safely (snapshot, borg compact, check), by `borg-server compact` or by
the monitor, and the policy that decides when the monitor may."""
