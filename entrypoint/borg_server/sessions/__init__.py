"""A client's SSH session: the forced command, the root broker it asks, the borg serve it runs under the
client's gate lock, stale locks, the audit line; and what a primary serves to its replica."""
