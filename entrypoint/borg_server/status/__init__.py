"""What `borg-server status` and the metrics endpoint show: every client's figures, as text, JSON or
Prometheus exposition."""
