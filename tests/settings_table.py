"""Every setting of both images with absurd values, for the unit and the integration table (pure data, JSON-able).

A case is (setting, value, environment changes): the good base environment plus the changes must be
refused with exit 2, a problem naming the setting and no traceback. Kinds share their absurd values:
huge, negative, unicode digits, a control character and 100 kB; empty where the setting is required.
A replica's settings (REPLICA) are tried on a good replica's environment, the others on a primary's.
"""

from __future__ import annotations

LONG = 100_000
ABSURD = {  # kind -> {case: value}
    "number": {"huge": "9" * 30, "negative": "-1", "unicode digits": "１２", "control": "22\x1b",
               "long": "9" * LONG},
    "duration": {"huge": "99999999999w", "overflow": "20000w", "negative": "-5m", "unicode digits": "１２m",
                 "control": "5m\x07", "long": "9" * LONG},
    "size": {"huge": "99999999999P", "negative": "-5G", "unicode digits": "１２G", "control": "50G\x1b",
             "long": "9" * LONG},
    "boolean": {"huge": "9" * 30, "negative": "-1", "unicode digits": "１", "control": "yes\x1b", "long": "y" * LONG},
    "level": {"unknown": "LOUD", "negative": "-1", "unicode digits": "１２", "control": "INFO\x1b",
              "long": "I" * LONG},
    "key": {"huge": "9" * 30, "negative": "-1", "unicode digits": "１２", "control": "ssh-ed25519 AAAA\x1b",
            "long": "A" * LONG},
    "urls": {"huge": " ".join(f"http://h{n}/" for n in range(21)), "negative": "-1", "unicode digits": "１２",
             "control": "http://h/\x1b[2J", "long": "http://h/" + "a" * LONG},
    "url": {"huge": "http://h/" + "a" * 3000, "negative": "-1", "unicode digits": "１２", "control": "http://h/\x1b[2J",
            "long": "http://h/" + "a" * LONG},
    "names": {"empty": "", "huge": " ".join(f"c{n}" for n in range(1001)), "negative": "-1", "unicode digits": "１２",
              "control": "web\x1b", "long": "a" * LONG},
    "host": {"huge port": "srv:" + "9" * 30, "negative": "-1", "unicode digits": "１２", "control": "srv\x1b",
             "long": "a" * LONG},
    "path": {"device": "/dev/zero", "negative": "-1", "unicode digits": "/１２", "control": "/etc/\x1b",
             "long": "/" + "a" * LONG},
    "text": {"control": "a{utcnow}\x1b[2J", "long": "{utcnow}" + "a" * LONG},
    "cron": {"huge": "99 99 99 99 99", "negative": "-1 * * * *", "unicode digits": "１２ * * * *",
             "control": "0 3 * * *\x1b", "long": "0 " * (LONG // 2)},
    "name": {"huge": "a" * 33, "negative": "-1", "unicode digits": "１２", "control": "web\x1b", "long": "a" * LONG},
    "compression": {"huge": "zstd,99", "negative": "zstd,-1", "unicode digits": "zstd,１２", "control": "lz4\x1b",
                    "long": "z" * LONG},
    "zone": {"huge": "Mars/Olympus_Mons", "negative": "-1", "unicode digits": "１２", "control": "UTC\x1b",
             "long": "a" * LONG},
    "notify urls": {"unknown scheme": "ntfyy://ntfy.example.org/backups", "malformed": "mailto://",
                    "huge": " ".join(f"ntfy://h{n}.example.org/t" for n in range(21)),
                    "control": "ntfy://h.example.org/t\x1b[2J", "long": "ntfy://h/" + "a" * LONG},
    "events": {"unknown": "failures", "negative": "-1", "unicode digits": "１２", "control": "failure\x1b",
               "long": "f" * LONG},
}  # fmt: skip

SERVER = {  # setting -> kind (the base environment: BORG_CLIENTS="web db")
    "BORG_CLIENTS": "names",
    "BORG_CLIENT_WEB_KEY": "key",
    "BORG_CLIENT_WEB_ADMIN_KEY": "key",
    "BORG_CLIENT_WEB_QUOTA": "size",
    "BORG_CLIENT_WEB_APPEND_ONLY": "boolean",
    "BORG_CLIENT_WEB_MAX_AGE": "duration",
    "BORG_CLIENT_WEB_AUTO_COMPACT": "level",
    "BORG_CLIENT_WEB_MAX_SESSIONS": "number",
    "SSH_PORT": "number",
    "METRICS_PORT": "number",
    "STATUS_PORT": "number",
    "STATUS_PASSWORD": "text",
    "STATUS_NO_PASSWORD": "boolean",
    "PUID": "number",
    "PGID": "number",
    "SSH_LOG_LEVEL": "level",
    "LOG_LEVEL": "level",
    "MONITOR_INTERVAL": "duration",
    "MONITOR_CHECK_INTERVAL": "duration",
    "COMPACT_DELAY": "duration",
    "SNAPSHOT_KEEP": "duration",
    "DISK_ALERT_USED": "number",
    "DISK_RESERVE": "size",
    "MAX_SESSIONS": "number",
    "REPORT_URLS": "urls",
    "NOTIFY_URLS": "notify urls",
    "NOTIFY_ON": "events",
    "BORG_SERVER_NAME": "host",
    "BORG_HOST_KEY": "key",
    "BORG_SERVER_CONFIG": "path",
    "BORG_REPLICA_KEY": "key",
    "REPLICATE_FROM": "url",
    "REPLICATE_HOST_KEY": "key",
    "REPLICATE_SSH_KEY_FILE": "path",
    "REPLICATE_CRON": "cron",
    "DIGEST_CRON": "cron",
    "REPLICA_KEEP_REMOVED": "duration",
    "REPLICA_MAX_LAG": "duration",
}
# A replica's own settings: tried with REPLICA_BASE (a good replica of a primary) besides the server's base.
REPLICA = ("REPLICATE_HOST_KEY", "REPLICATE_SSH_KEY_FILE", "REPLICATE_CRON", "REPLICA_KEEP_REMOVED", "REPLICA_MAX_LAG")
REPLICA_BASE = {
    "REPLICATE_FROM": "ssh://borg@primary:22",
    "REPLICATE_HOST_KEY": "primary ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOxYbhQWClist4OOwLuWVGFsFXWLyurigRdBRFTavFh1",
    "REPLICATE_SSH_KEY_FILE": "/etc/hostname",  # any regular file in both the image and a test's host
}
CLIENT = {  # setting -> kind (the base environment: a pairing export and BORG_PASSPHRASE_FILE)
    "CLIENT_NAME": "name",
    "BORG_REPO": "url",
    "BORG_SSH_KEY_FILE": "path",
    "BORG_KNOWN_HOSTS_FILE": "path",
    "BORG_PASSPHRASE_FILE": "path",
    "BORG_PASSCOMMAND": "text",
    "BORG_PASSPHRASE": "text",
    "BACKUP_CRON": "cron",
    "DIGEST_CRON": "cron",
    "BACKUP_JITTER": "duration",
    "ARCHIVE_NAME": "text",
    "BORG_COMPRESSION": "compression",
    "BORG_ENCRYPTION": "level",
    "EXCLUDE_CACHES": "boolean",
    "BACKUP_ALLOW_EMPTY": "boolean",
    "RESTORE_FROM_REPLICA": "boolean",
    "BACKUP_STOP_LABEL": "text",
    "BACKUP_DUMP_LABEL": "text",
    "COVERAGE_SCOPE": "text",
    "COVERAGE_IGNORE": "text",
    "REPORT_URLS": "urls",
    "NOTIFY_URLS": "notify urls",
    "NOTIFY_ON": "events",
    "HEALTHCHECKS_URL": "url",
    "REPORT_TIMEOUT": "duration",
    "RETRY_DELAYS": "duration",
    "LOG_LEVEL": "level",
    "TZ": "zone",
    "KEEP_WITHIN": "duration",
    "KEEP_HOURLY": "number",
    "KEEP_DAILY": "number",
    "KEEP_WEEKLY": "number",
    "KEEP_MONTHLY": "number",
    "KEEP_YEARLY": "number",
    "PRUNE_CRON": "cron",
    "PRUNE_MIN_SIZE_RATIO": "number",
    "BORG_ADMIN_SSH_KEY_FILE": "path",
    "VERIFY_CRON": "cron",
    "VERIFY_SAMPLE": "number",
    "VERIFY_DATA_EVERY": "number",
    "BORG_KEY_IMPORT_FILE": "path",
}
EXTRA = {  # absurd values of one setting that no kind covers
    ("LOG_LEVEL", "verbose"): "verbose",
    ("BORG_PASSPHRASE_FILE", "empty"): "",
    ("BORG_SERVER_CONFIG", "the passphrase file"): "/run/secrets/borg_passphrase",
    ("VERIFY_SAMPLE", "over 100%"): "150%",
    ("VERIFY_SAMPLE", "zero"): "0",
    ("VERIFY_SAMPLE", "no share"): "0%",
}
ALONE = ("BORG_PASSCOMMAND", "BORG_PASSPHRASE")  # set instead of BORG_PASSPHRASE_FILE, not beside it


def cases(table: dict[str, str]) -> list[dict]:
    """Given SERVER or CLIENT, return every case: {"id", "setting", "value", "unset": [settings to drop],
    "set": {settings to add to the base}}."""
    found = [
        {"id": f"{setting} {case}", "setting": setting, "value": value}
        for setting, kind in table.items()
        for case, value in ABSURD[kind].items()
    ]
    found += [{"id": f"{s} {case}", "setting": s, "value": v} for (s, case), v in EXTRA.items() if s in table]
    for case in found:
        case["unset"] = ["BORG_PASSPHRASE_FILE"] if case["setting"] in ALONE else []
        case["set"] = REPLICA_BASE if case["setting"] in REPLICA else {}
    return found


SERVER_CASES, CLIENT_CASES = cases(SERVER), cases(CLIENT)
