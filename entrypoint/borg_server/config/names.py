"""The names of the server's settings: each variable, and the BORG_SERVER_CONFIG field that stands for it.

A field in the file is the same setting as its variable: ssh_port is SSH_PORT, clients.web.key_file
is BORG_CLIENT_WEB_KEY_FILE.
"""

from __future__ import annotations

CLIENT_FIELDS = ("key", "admin_key", "quota", "append_only", "max_age", "auto_compact", "max_sessions")
SERVER_FIELDS = (
    {"server_name": "BORG_SERVER_NAME"}
    | {  # top-level settings: name in YAML -> variable
        field: field.upper()
        for field in (
            "ssh_port",
            "puid",
            "pgid",
            "ssh_log_level",
            "monitor_interval",
            "monitor_check_interval",
            "metrics_port",
            "status_port",
            "status_password",
            "status_no_password",
            "report_urls",
            "notify_urls",
            "notify_on",
            "disk_alert_used",
            "disk_reserve",
            "compact_delay",
            "snapshot_keep",
            "max_sessions",
            "replicate_from",
            "replicate_host_key",
            "replicate_cron",
            "replica_keep_removed",
            "replica_max_lag",
        )
    }
    | {"replica_key": "BORG_REPLICA_KEY"}
)  # fmt: skip (REPLICATE_SSH_KEY_FILE: environment only, its name ends in _FILE)


def env_name(name: str) -> str:
    """Given a client name, return its part of variable names: upper case, "-" as "_"."""
    return name.upper().replace("-", "_")


def client_variable(name: str, field: str) -> str:
    """Given a client name and one of CLIENT_FIELDS, return its variable (web, quota: BORG_CLIENT_WEB_QUOTA)."""
    return f"BORG_CLIENT_{env_name(name)}_{field.upper()}"
