"""A client's status for the status tests (lines, figures, page, digest): one factory, each test's own fields."""

from __future__ import annotations

from borg_server.status.facts import ClientStatus


def client_status(client: str, **fields) -> ClientStatus:
    """Return the status of a client with nothing known about it (ClientStatus's defaults for the rest), with fields
    changed."""
    defaults = dict(last_backup=None, age_s=None, repository_bytes=0, quota_bytes=None, quota_used=None,
                    append_only=True, unacknowledged_deletes=0, tampered_segments=0, last_check_at=None,
                    last_check=None, alerts=[])  # fmt: skip
    return ClientStatus(client=client, **(defaults | fields))
