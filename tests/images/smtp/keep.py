"""An SMTP server on port 2525 that keeps every message it accepts as /data/<n>.eml (its envelope in <n>.json)."""

import json
import signal
from pathlib import Path

from aiosmtpd.controller import Controller

DATA = Path("/data")


class Keep:
    async def handle_DATA(self, server, session, envelope):
        number = len(list(DATA.glob("*.eml")))
        (DATA / f"{number:04d}.json").write_text(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos}))
        (DATA / f"{number:04d}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 OK"


DATA.mkdir(exist_ok=True)
controller = Controller(Keep(), hostname="0.0.0.0", port=2525)
controller.start()
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
