"""The `borg-server` commands: the admin's (status, scan, audit, compact, pairing) and the container's own
(start, monitor, broker, healthcheck)."""
