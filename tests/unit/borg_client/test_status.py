"""borg-client status (borg_client/status.py): the reports and the notifications waiting in their outboxes."""

from __future__ import annotations

import json
from types import SimpleNamespace

from borg_client import status
from borg_common import notify, outbox


def test_status_counts_the_notifications_waiting_beside_the_reports_waiting(config, capsys):
    outbox.put(config.paths.outbox, {"run_id": "r1"}, ["http://receiver:8080/report"])
    for key in ("n1", "n2"):
        message = notify.Message("failure", "backup of web failed on app-host", "why", key)
        outbox.put(config.paths.notify_outbox, message.document(), ["ntfy://ntfy/backups"])

    assert status.command_status(config, SimpleNamespace(json=False, runs=5)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4:6] == ["reports_waiting:       1", "notifications_waiting: 2"]
    assert lines[0] == "client:                web"

    assert status.command_status(config, SimpleNamespace(json=True, runs=5)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["reports_waiting"], shown["notifications_waiting"]) == (1, 2)
