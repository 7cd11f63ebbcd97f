"""What `borg-server status`, the metrics endpoint and the status page show: every client's figures, as text, JSON,
Prometheus exposition or an HTML page."""
