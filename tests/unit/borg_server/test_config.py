"""Tests for loading the server configuration: good setups from the environment and YAML, and every
problem reported as the one line a user reads."""

import pytest
import yaml

from borg_common.settings import ConfigError
from borg_server.config.reader import load
from borg_server.records.configuration import ClientSpec, ServerConfig
from borg_server.system.ssh_keys import parse_public_key
from tests.unit.borg_server.sample_keys import ED25519, ED25519_BLOB, ED25519_OTHER, RSA_1024, RSA_2048

DAY_AND_TWO_HOURS = 26 * 3600
WEEK = 7 * 86400
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$ (lower-case letters, digits, - and _)"
SERVER_KEYS = (
    "allowed: server_name, ssh_port, puid, pgid, ssh_log_level, monitor_interval, monitor_check_interval, "
    "metrics_port, status_port, status_password, status_no_password, report_urls, notify_urls, notify_on, "
    "disk_alert_used, disk_reserve, compact_delay, snapshot_keep, max_sessions, "
    "replicate_from, "
    "replicate_host_key, replicate_cron, replica_keep_removed, replica_max_lag, replica_key, "
    "clients; "
    "each setting also as <setting>_file"
)
CLIENT_KEYS = (
    "allowed: key, admin_key, quota, append_only, max_age, auto_compact, max_sessions; each also as <setting>_file"
)
BAD_SERVER_NAME = "is not a host name, IPv4 address or [IPv6] address, with optional :port"
NO_CLIENT = 'no client is configured; set it to client names (e.g. "web db") or list clients in BORG_SERVER_CONFIG'
OWN_KEY = "each client and admin needs its own key"
OPTIONS = "give only the key: the server writes the options itself"


def problems_of(environ: dict[str, str]) -> list[str]:
    """Given an environment that must fail, return the problems load() reports."""
    with pytest.raises(ConfigError) as error:
        load(environ, "backup")
    return error.value.problems


def client(name: str, **fields) -> ClientSpec:
    """Given a name and the fields that differ from the defaults, return the expected ClientSpec."""
    defaults = dict(key=None, admin_key=None, quota=None, append_only=True, max_age=DAY_AND_TWO_HOURS)
    return ClientSpec(name=name, env_name=name.upper().replace("-", "_"), **(defaults | fields))


def server(*clients: ClientSpec, **fields) -> ServerConfig:
    """Given clients and the fields that differ from the defaults, return the expected ServerConfig."""
    defaults = dict(server_host="backup", server_port=22, ssh_port=22, puid=1000, pgid=1000)
    defaults |= dict(
        ssh_log_level="VERBOSE", monitor_interval=900, check_interval=WEEK, metrics_port=None, report_urls=()
    )
    return ServerConfig(clients=clients, **(defaults | fields))


def test_one_client_named_in_the_environment_gets_every_default():
    assert load({"BORG_CLIENTS": "web"}, "backup") == server(client("web"))


def test_a_full_configuration_from_the_environment_is_read(tmp_path):
    (tmp_path / "db.pub").write_text(ED25519_OTHER + "\n")
    environ = {
        "BORG_CLIENTS": "web, db-1",
        "BORG_CLIENT_WEB_KEY": ED25519,
        "BORG_CLIENT_WEB_ADMIN_KEY": RSA_2048,
        "BORG_CLIENT_WEB_QUOTA": "50G",
        "BORG_CLIENT_WEB_APPEND_ONLY": "no",
        "BORG_CLIENT_WEB_MAX_AGE": "2d",
        "BORG_CLIENT_DB_1_KEY_FILE": str(tmp_path / "db.pub"),
        "BORG_SERVER_NAME": "backup.example.org:2222",
        "SSH_PORT": "2022",
        "PUID": "1001",
        "PGID": "1002",
        "SSH_LOG_LEVEL": "debug2",
        "MONITOR_INTERVAL": "10m",
        "MONITOR_CHECK_INTERVAL": "3d",
        "METRICS_PORT": "9100",
        "REPORT_URLS": "https://hooks.example.org/borg, http://10.0.0.9:8080/alert",
    }
    web = client(
        "web",
        key=parse_public_key(ED25519),
        admin_key=parse_public_key(RSA_2048),
        quota=50 * 1000**3,
        append_only=False,
        max_age=2 * 86400,
    )
    assert load(environ, "ignored") == server(
        client("db-1", key=parse_public_key(ED25519_OTHER)),
        web,
        server_host="backup.example.org",
        server_port=2222,
        ssh_port=2022,
        puid=1001,
        pgid=1002,
        ssh_log_level="DEBUG2",
        monitor_interval=600,
        check_interval=3 * 86400,
        metrics_port=9100,
        report_urls=("https://hooks.example.org/borg", "http://10.0.0.9:8080/alert"),
    )


def test_a_full_configuration_from_a_yaml_file_is_read(tmp_path):
    (tmp_path / "web-admin.pub").write_text(RSA_2048 + "\n")
    (tmp_path / "borg.yaml").write_text(
        f"""
server_name: backup.example.org:2222
ssh_port: 22
puid: 1000
pgid: 1000
ssh_log_level: info
monitor_interval: 15m
monitor_check_interval: 1d
metrics_port: 9100
report_urls: [https://hooks.example.org/borg]
clients:
  web:
    key: {ED25519}
    admin_key_file: {tmp_path / "web-admin.pub"}
    quota: 50G
    append_only: false
    max_age: 26h
  db: {{quota: 10000000, append_only: "yes", max_age: 3600}}
  logs:
"""
    )
    web = client(
        "web",
        key=parse_public_key(ED25519),
        admin_key=parse_public_key(RSA_2048),
        quota=50 * 1000**3,
        append_only=False,
    )
    assert load({"BORG_SERVER_CONFIG": str(tmp_path / "borg.yaml")}, "backup") == server(
        client("db", quota=10000000, max_age=3600),
        client("logs"),
        web,
        server_host="backup.example.org",
        server_port=2222,
        ssh_log_level="INFO",
        check_interval=86400,
        metrics_port=9100,
        report_urls=("https://hooks.example.org/borg",),
    )


def test_clients_from_the_environment_and_the_file_are_combined_and_sorted(tmp_path):
    (tmp_path / "borg.yaml").write_text("ssh_port: 2222\nclients: {alpha: {}}\n")
    environ = {"BORG_CLIENTS": "zulu", "BORG_SERVER_CONFIG": str(tmp_path / "borg.yaml"), "PUID": "1234"}
    assert load(environ, "backup") == server(
        client("alpha"), client("zulu"), server_port=2222, ssh_port=2222, puid=1234
    )


def test_empty_per_client_variables_count_as_unset():
    assert load({"BORG_CLIENTS": "web", "BORG_CLIENT_WEB_KEY": "", "BORG_CLIENT_WEB_QUTA": ""}, "backup") == server(
        client("web")
    )


@pytest.mark.parametrize(
    ("server_name", "host", "port"),
    [
        ("backup.example.org", "backup.example.org", 22),
        ("Backup-1.example.org:2222", "Backup-1.example.org", 2222),
        ("192.0.2.7:65535", "192.0.2.7", 65535),
        ("[2001:db8::1]:2222", "2001:db8::1", 2222),
        ("[::1]", "::1", 22),
    ],
)
def test_server_name_gives_the_host_and_port_clients_connect_to(server_name, host, port):
    config = load({"BORG_CLIENTS": "web", "BORG_SERVER_NAME": server_name}, "backup")
    assert (config.server_host, config.server_port, config.ssh_port) == (host, port, 22)


WEB_DB = {"BORG_CLIENTS": "web db"}


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({}, f"BORG_CLIENTS: {NO_CLIENT}"),
        ({"BORG_CLIENTS": "Web"}, f"BORG_CLIENTS: 'Web' is not a valid client name; names match {NAME_PATTERN}"),
        (
            {"BORG_CLIENTS": "a" * 33},
            f"BORG_CLIENTS: '{'a' * 33}' is not a valid client name; names match {NAME_PATTERN}",
        ),
        ({"BORG_CLIENTS": "-web"}, f"BORG_CLIENTS: '-web' is not a valid client name; names match {NAME_PATTERN}"),
        ({"BORG_CLIENTS": "web db web"}, "BORG_CLIENTS: web is listed twice"),
        ({"BORG_CLIENTS": "web-1,web_1"}, "BORG_CLIENTS: web-1 and web_1 both use BORG_CLIENT_WEB_1_*; rename one"),
        (
            WEB_DB | {"BORG_CLIENT_WEB_KEY": f"{ED25519}\n{ED25519_OTHER}"},
            "BORG_CLIENT_WEB_KEY: has 2 lines; a key is one line",
        ),
        (
            WEB_DB | {"BORG_CLIENT_DB_ADMIN_KEY": "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nAAAA"},
            "BORG_CLIENT_DB_ADMIN_KEY: looks like a private key; give the public key (the .pub file)",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_KEY": f"restrict {ED25519}"},
            f"BORG_CLIENT_WEB_KEY: starts with options; {OPTIONS}",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_KEY": RSA_1024},
            "BORG_CLIENT_WEB_KEY: is an RSA key of 1024 bits; use at least 2048 bits, or an ed25519 key",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_KEY": ED25519, "BORG_CLIENT_DB_KEY": f"ssh-ed25519 {ED25519_BLOB} other@host"},
            f"BORG_CLIENT_DB_KEY: is the same key as BORG_CLIENT_WEB_KEY; {OWN_KEY}",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_KEY": ED25519, "BORG_CLIENT_WEB_ADMIN_KEY": ED25519},
            f"BORG_CLIENT_WEB_ADMIN_KEY: is the same key as BORG_CLIENT_WEB_KEY; {OWN_KEY}",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_KEY": ED25519, "BORG_CLIENT_WEB_KEY_FILE": "/run/secrets/web.pub"},
            "BORG_CLIENT_WEB_KEY: both BORG_CLIENT_WEB_KEY and BORG_CLIENT_WEB_KEY_FILE are set; set only one",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_KEY_FILE": "/nonexistent/web.pub"},
            "BORG_CLIENT_WEB_KEY_FILE: cannot read /nonexistent/web.pub: No such file or directory",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_QUOTA": "lots"},
            "BORG_CLIENT_WEB_QUOTA: 'lots' is not a size; use a number with K, M, G, T or P (e.g. 50G)",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_QUOTA": "0G"},
            "BORG_CLIENT_WEB_QUOTA: 0 is out of range 10M..1P",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_QUOTA": "5M"},
            "BORG_CLIENT_WEB_QUOTA: 5M is out of range 10M..1P",
        ),
        (
            WEB_DB | {"MAX_SESSIONS": "0"},
            "MAX_SESSIONS: 0 is out of range 1..1000",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_MAX_SESSIONS": "2000"},
            "BORG_CLIENT_WEB_MAX_SESSIONS: 2000 is out of range 1..1000",
        ),
        (
            WEB_DB | {"BORG_CLIENT_DB_APPEND_ONLY": "maybe"},
            "BORG_CLIENT_DB_APPEND_ONLY: 'maybe' is not a boolean; use one of yes, true, on, 1, no, false, off, 0",
        ),
        (
            WEB_DB | {"BORG_CLIENT_DB_MAX_AGE": "soon"},
            "BORG_CLIENT_DB_MAX_AGE: 'soon' is not a duration; use a number with s, m, h, d or w (e.g. 26h)",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_QUTA": "5G"},
            "BORG_CLIENT_WEB_QUTA: unknown setting; per-client settings are KEY, ADMIN_KEY, QUOTA, APPEND_ONLY, "
            "MAX_AGE, AUTO_COMPACT, MAX_SESSIONS, each also as _FILE",
        ),
        (
            WEB_DB | {"BORG_CLIENT_WEB_X_KEY_FILE": "/run/secrets/x.pub"},
            "BORG_CLIENT_WEB_X_KEY_FILE: no client web-x is configured (BORG_CLIENTS lists: web, db)",
        ),
        (
            {"BORG_CLIENTS": "web web-admin", "BORG_CLIENT_WEB_ADMIN_KEY": ED25519},
            "BORG_CLIENT_WEB_ADMIN_KEY: could mean ADMIN_KEY of client web or KEY of client web-admin; "
            "rename one of these clients",
        ),
        (WEB_DB | {"SSH_PORT": "0"}, "SSH_PORT: 0 is out of range 1..65535"),
        (WEB_DB | {"SSH_PORT": "ssh"}, "SSH_PORT: 'ssh' is not a whole number"),
        (WEB_DB | {"PUID": "0"}, "PUID: 0 is root; the borg account must not be root"),
        (WEB_DB | {"PGID": "-5"}, "PGID: -5 is out of range 1..2147483647"),
        (WEB_DB | {"PGID": str(2**31)}, "PGID: 2147483648 is out of range 1..2147483647"),
        (
            WEB_DB | {"SSH_LOG_LEVEL": "loud"},
            "SSH_LOG_LEVEL: 'loud' is not one of QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1, DEBUG2, DEBUG3",
        ),
        (WEB_DB | {"MONITOR_INTERVAL": "5s"}, "MONITOR_INTERVAL: 5s is out of range 10s..1w"),
        (
            WEB_DB | {"MONITOR_INTERVAL": "hourly"},
            "MONITOR_INTERVAL: 'hourly' is not a duration; use a number with s, m, h, d or w (e.g. 26h)",
        ),
        (
            WEB_DB | {"MONITOR_CHECK_INTERVAL": "9s"},
            "MONITOR_CHECK_INTERVAL: 9s is out of range 10s..52w",
        ),
        (
            WEB_DB | {"MONITOR_CHECK_INTERVAL": "weekly"},
            "MONITOR_CHECK_INTERVAL: 'weekly' is not a duration; use a number with s, m, h, d or w (e.g. 26h)",
        ),
        (WEB_DB | {"METRICS_PORT": "22"}, "METRICS_PORT: 22 is SSH_PORT's port; pick another one"),
        (
            WEB_DB | {"METRICS_PORT": "2222", "SSH_PORT": "2222"},
            "METRICS_PORT: 2222 is SSH_PORT's port; pick another one",
        ),
        (WEB_DB | {"METRICS_PORT": "0"}, "METRICS_PORT: 0 is out of range 1..65535"),
        (WEB_DB | {"METRICS_PORT": "65536"}, "METRICS_PORT: 65536 is out of range 1..65535"),
        (WEB_DB | {"METRICS_PORT": "prometheus"}, "METRICS_PORT: 'prometheus' is not a whole number"),
        (
            WEB_DB | {"REPORT_URLS": "https://ok.example.org ftp://files.example.org"},
            "REPORT_URLS: 'ftp://files.example.org' is not an http:// or https:// URL with a host",
        ),
        (
            WEB_DB | {"REPORT_URLS": "https://user:secret@/hook"},
            "REPORT_URLS: 'https://***@/…' is not an http:// or https:// URL with a host",
        ),
        (WEB_DB | {"BORG_SERVER_NAME": "backup_host"}, f"BORG_SERVER_NAME: 'backup_host' {BAD_SERVER_NAME}"),
        (
            WEB_DB | {"BORG_SERVER_NAME": "-backup.example.org"},
            f"BORG_SERVER_NAME: '-backup.example.org' {BAD_SERVER_NAME}",
        ),
        (
            WEB_DB | {"BORG_SERVER_NAME": "backup..example.org"},
            f"BORG_SERVER_NAME: 'backup..example.org' {BAD_SERVER_NAME}",
        ),
        (WEB_DB | {"BORG_SERVER_NAME": "999.0.2.7"}, f"BORG_SERVER_NAME: '999.0.2.7' {BAD_SERVER_NAME}"),
        (WEB_DB | {"BORG_SERVER_NAME": "2001:db8::1"}, f"BORG_SERVER_NAME: '2001:db8::1' {BAD_SERVER_NAME}"),
        (WEB_DB | {"BORG_SERVER_NAME": "[192.0.2.7]"}, f"BORG_SERVER_NAME: '[192.0.2.7]' {BAD_SERVER_NAME}"),
        (WEB_DB | {"BORG_SERVER_NAME": "backup:65536"}, f"BORG_SERVER_NAME: 'backup:65536' {BAD_SERVER_NAME}"),
        (WEB_DB | {"BORG_SERVER_NAME": "backup:0"}, f"BORG_SERVER_NAME: 'backup:0' {BAD_SERVER_NAME}"),
        (
            WEB_DB | {"BORG_SERVER_CONFIG": "/nonexistent/borg.yaml"},
            "BORG_SERVER_CONFIG: cannot read /nonexistent/borg.yaml: No such file or directory",
        ),
    ],
)
def test_a_bad_environment_is_reported_as_one_line_naming_the_setting(environ, problem):
    assert problems_of(environ) == [problem]


BAD_YAML = [  # (document, environment, the one problem reported)
    (
        "clients: [\n",
        {},
        "{file}: is not valid YAML: line 2, column 1: expected the node content, but found '<stream end>'",
    ),
    ("- web\n- db\n", {}, f"{{file}}: must be a mapping of settings, not a list; {SERVER_KEYS}"),
    ("ssh_prot: 22\nclients: {web: }\n", {}, f"{{file}} ssh_prot: unknown setting; {SERVER_KEYS}"),
    ("clients: {web: {qouta: 5G}}\n", {}, f"{{file}} clients.web.qouta: unknown setting; {CLIENT_KEYS}"),
    ("clients: [web, db]\n", {}, "{file} clients: must be a mapping of client names to their settings"),
    ("clients: {web: [quota]}\n", {}, f"{{file}} clients.web: must be a mapping of settings; {CLIENT_KEYS}"),
    ("clients: {web: {quota: {size: 5G}}}\n", {}, "{file} clients.web.quota: must be a value or a list of values"),
    (
        "clients: {}\n",
        {},
        f"BORG_CLIENTS: {NO_CLIENT}",
    ),
    (
        f"clients: {{web: {{key: {ED25519}, key_file: /run/secrets/web.pub}}}}\n",
        {},
        "{file} clients.web.key: both key and key_file are set; set only one",
    ),
    (
        "clients: {web: {admin_key_file: /nonexistent/web.pub}}\n",
        {},
        "{file} clients.web.admin_key_file: cannot read /nonexistent/web.pub: No such file or directory",
    ),
    (
        "clients: {web: {key: ssh-dss AAAAB3NzaC1kc3M=}}\n",
        {},
        "{file} clients.web.key: DSA keys (ssh-dss) are no longer accepted by OpenSSH 10; use an ed25519 key",
    ),
    (
        "clients: {web: {quota: 0}}\n",
        {},
        "{file} clients.web.quota: 0 is out of range 10M..1P",
    ),
    (
        "clients: {web: {append_only: maybe}}\n",
        {},
        "{file} clients.web.append_only: 'maybe' is not a boolean; use one of yes, true, on, 1, no, false, off, 0",
    ),
    ("clients: {Web: {}}\n", {}, f"{{file}} clients: 'Web' is not a valid client name; names match {NAME_PATTERN}"),
    (
        "clients: {web_1: {}}\n",
        {"BORG_CLIENTS": "web-1"},
        "{file} clients: web-1 and web_1 both use BORG_CLIENT_WEB_1_*; rename one",
    ),
    (
        "clients: {web: {}}\n",
        {"BORG_CLIENTS": "web"},
        "BORG_CLIENTS: web is also configured in {file} clients; configure it in one place",
    ),
    (
        "ssh_port: 22\nclients: {web: {}}\n",
        {"SSH_PORT": "2222"},
        "SSH_PORT: is also set as {file} ssh_port; set it in one place",
    ),
    (
        f"clients: {{db: {{admin_key: 'ssh-ed25519 {ED25519_BLOB}'}}}}\n",
        {"BORG_CLIENTS": "web", "BORG_CLIENT_WEB_KEY": ED25519},
        f"{{file}} clients.db.admin_key: is the same key as BORG_CLIENT_WEB_KEY; {OWN_KEY}",
    ),
    (
        "server_name: backup:99999\nclients: {web: }\n",
        {},
        f"{{file}} server_name: 'backup:99999' {BAD_SERVER_NAME}",
    ),
    ("puid: 0\nclients: {web: }\n", {}, "{file} puid: 0 is root; the borg account must not be root"),
    (
        "monitor_check_interval: 1s\nclients: {web: }\n",
        {},
        "{file} monitor_check_interval: 1s is out of range 10s..52w",
    ),
    (
        "ssh_port: 2222\nmetrics_port: 2222\nclients: {web: }\n",
        {},
        "{file} metrics_port: 2222 is SSH_PORT's port; pick another one",
    ),
    (
        "metrics_port: 9100\nclients: {web: }\n",
        {"METRICS_PORT": "9200"},
        "METRICS_PORT: is also set as {file} metrics_port; set it in one place",
    ),
    (
        "report_urls: [mailto:ops@example.org]\nclients: {web: }\n",
        {},
        "{file} report_urls: 'mailto:ops@example.org' is not an http:// or https:// URL with a host",
    ),
    ("x: " + "[" * 200_000 + "\n", {}, "{file}: is not valid YAML: it is nested too deeply"),
]


@pytest.mark.parametrize(
    ("document", "environ", "problem"),
    BAD_YAML,
    ids=[problem.replace("{file}", "").strip(" :")[:80] for _document, _environ, problem in BAD_YAML],
)
def test_a_bad_yaml_file_is_reported_as_one_line_naming_the_place_in_it(tmp_path, document, environ, problem):
    path = tmp_path / "borg.yaml"
    path.write_text(document)
    assert problems_of(environ | {"BORG_SERVER_CONFIG": str(path)}) == [
        problem.replace("{file}", f"BORG_SERVER_CONFIG ({path})")
    ]


def test_every_problem_is_reported_together_in_one_error():
    environ = {
        "BORG_CLIENTS": "web db Bad",
        "BORG_CLIENT_WEB_KEY": f"{ED25519}\n",
        "BORG_CLIENT_DB_KEY": f"ssh-ed25519 {ED25519_BLOB}\nssh-ed25519 {ED25519_BLOB}",
        "BORG_CLIENT_DB_QUOTA": "huge",
        "BORG_CLIENT_DB_QUTA": "5G",
        "PUID": "0",
        "SSH_PORT": "70000",
    }
    assert sorted(problems_of(environ)) == sorted(
        [
            f"BORG_CLIENTS: 'Bad' is not a valid client name; names match {NAME_PATTERN}",
            "BORG_CLIENT_DB_KEY: has 2 lines; a key is one line",
            "BORG_CLIENT_DB_QUOTA: 'huge' is not a size; use a number with K, M, G, T or P (e.g. 50G)",
            "BORG_CLIENT_DB_QUTA: unknown setting; per-client settings are KEY, ADMIN_KEY, QUOTA, APPEND_ONLY, "
            "MAX_AGE, AUTO_COMPACT, MAX_SESSIONS, each also as _FILE",
            "PUID: 0 is root; the borg account must not be root",
            "SSH_PORT: 70000 is out of range 1..65535",
        ]
    )


def test_the_error_message_has_one_line_per_problem():
    with pytest.raises(ConfigError) as error:
        load({"BORG_CLIENTS": "web", "PUID": "0", "PGID": "0"}, "backup")
    assert str(error.value).splitlines() == [
        "PUID: 0 is root; the borg account must not be root",
        "PGID: 0 is root; the borg account must not be root",
    ]


def test_metrics_are_off_and_checks_weekly_unless_configured():
    config = load({"BORG_CLIENTS": "web"}, "backup")

    assert (config.metrics_port, config.check_interval) == (None, 604800)


def test_metrics_port_may_equal_the_ssh_port_clients_connect_to_when_sshd_listens_elsewhere():
    config = load({"BORG_CLIENTS": "web", "BORG_SERVER_NAME": "backup:9100", "METRICS_PORT": "9100"}, "backup")

    assert (config.server_port, config.ssh_port, config.metrics_port) == (9100, 22, 9100)


# One reading path: a setting written as a variable, its _FILE, a field of BORG_SERVER_CONFIG or its _file
# is the same setting, read by the same reader under the same rules; only the name a problem gives differs.
FORMS = ("variable", "variable _FILE", "field", "field _file")


def write_setting(tmp_path, form: str, variable: str, field: str, value: str) -> dict[str, str]:
    """Given a form from FORMS, a setting's variable and field (e.g. "clients.web.key") and its value, return an
    environment that sets it that way, with one client web (in the file for a field of clients.web)."""
    secret, path = tmp_path / "secret", tmp_path / "borg.yaml"
    secret.write_text(value + "\n")
    if form.startswith("variable"):
        return {"BORG_CLIENTS": "web"} | (
            {variable: value} if form == "variable" else {f"{variable}_FILE": str(secret)}
        )
    name = field.rpartition(".")[2] + ("" if form == "field" else "_file")
    text = value if form == "field" else str(secret)
    is_client_field = field.startswith("clients.web.")
    path.write_text(yaml.safe_dump({"clients": {"web": {name: text}}} if is_client_field else {name: text}))
    return {"BORG_SERVER_CONFIG": str(path)} | ({} if is_client_field else {"BORG_CLIENTS": "web"})


def label(tmp_path, form: str, variable: str, field: str) -> str:
    """Given a form, a variable and its field, return how a problem names that setting: its file if read from one."""
    suffix = {"variable": "", "variable _FILE": "_FILE", "field": "", "field _file": "_file"}[form]
    return (variable if form.startswith("variable") else f"BORG_SERVER_CONFIG ({tmp_path / 'borg.yaml'}) {field}") + (
        suffix
    )


def unquoted(tmp_path, form: str, problem: str, value: str) -> str:
    """Given a form and a problem quoting value, return the problem as it reads when the value came from a file."""
    return (
        problem.replace(value, f"the value in {tmp_path / 'secret'}", 1)
        if form.endswith("ILE") or form.endswith("file")
        else problem
    )


@pytest.mark.parametrize("form", FORMS)
def test_a_client_key_is_the_same_setting_in_every_form(tmp_path, form):
    environ = write_setting(tmp_path, form, "BORG_CLIENT_WEB_KEY", "clients.web.key", ED25519)

    assert load(environ, "backup").clients == (client("web", key=parse_public_key(ED25519)),)


@pytest.mark.parametrize("form", FORMS)
def test_a_server_setting_is_the_same_setting_in_every_form(tmp_path, form):
    environ = write_setting(tmp_path, form, "SSH_PORT", "ssh_port", "2222")

    assert load(environ, "backup") == server(client("web"), server_port=2222, ssh_port=2222)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("variable", "field", "value", "problem"),
    [
        ("BORG_CLIENT_WEB_KEY", "clients.web.key", f"{ED25519}\n{ED25519_OTHER}", "has 2 lines; a key is one line"),
        ("BORG_CLIENT_WEB_QUOTA", "clients.web.quota", "5M", "5M is out of range 10M..1P"),
        ("MONITOR_INTERVAL", "monitor_interval", "5s", "5s is out of range 10s..1w"),
        ("PUID", "puid", "0", "0 is root; the borg account must not be root"),
    ],
)
def test_a_bad_value_is_the_same_problem_in_every_form_naming_the_setting_as_written(
    tmp_path, form, variable, field, value, problem
):
    environ = write_setting(tmp_path, form, variable, field, value)

    shown = value.partition("\n")[0]
    assert problems_of(environ) == [
        f"{label(tmp_path, form, variable, field)}: {unquoted(tmp_path, form, problem, shown)}"
    ]


@pytest.mark.parametrize(
    ("environ", "document", "problem"),
    [
        (
            {"BORG_CLIENTS": "web", "SSH_PORT": "22", "SSH_PORT_FILE": "/run/secrets/port"},
            "{}\n",
            "SSH_PORT: both SSH_PORT and SSH_PORT_FILE are set; set only one",
        ),
        (
            {},
            "ssh_port: 22\nssh_port_file: /run/port\nclients: {web: }\n",
            "{file} ssh_port: both ssh_port and ssh_port_file are set; set only one",
        ),
        (
            {},
            "clients: {web: {quota: 50G, quota_file: /run/quota}}\n",
            "{file} clients.web.quota: both quota and quota_file are set; set only one",
        ),
        (
            {"SSH_PORT_FILE": "/run/secrets/port"},
            "ssh_port: 22\nclients: {web: }\n",
            "SSH_PORT_FILE: is also set as {file} ssh_port; set it in one place",
        ),
        (
            {"BORG_CLIENT_WEB_KEY": ED25519},
            f"clients: {{web: {{key: '{ED25519_OTHER}'}}}}\n",
            "BORG_CLIENT_WEB_KEY: is also set as {file} clients.web.key; set it in one place",
        ),
    ],
)
def test_a_setting_given_twice_is_one_problem_in_every_form(tmp_path, environ, document, problem):
    path = tmp_path / "borg.yaml"
    path.write_text(document)

    assert problems_of(environ | {"BORG_SERVER_CONFIG": str(path)}) == [
        problem.replace("{file}", f"BORG_SERVER_CONFIG ({path})")
    ]


@pytest.mark.parametrize("variable", ["BORG_CLIENT_WEB_ADMIN_KEY", "METRICS_PORT"])
@pytest.mark.parametrize("form", ["variable _FILE", "field _file"])
def test_an_unreadable_file_is_a_problem_naming_the_file_setting_in_every_form(tmp_path, form, variable):
    field = "clients.web.admin_key" if variable.startswith("BORG_CLIENT_") else "metrics_port"
    environ = write_setting(tmp_path, form, variable, field, "unused")
    (tmp_path / "secret").unlink()

    assert problems_of(environ) == [
        f"{label(tmp_path, form.split()[0], variable + '_FILE', field + '_file')}: cannot read {tmp_path / 'secret'}: "
        "No such file or directory"
    ]


def test_a_variable_for_a_client_of_the_file_that_the_file_does_not_set_is_still_refused(tmp_path):
    path = tmp_path / "borg.yaml"
    path.write_text("clients: {web: }\n")

    assert problems_of({"BORG_SERVER_CONFIG": str(path), "BORG_CLIENT_WEB_QUOTA": "50G"}) == [
        "BORG_CLIENT_WEB_QUOTA: no client web is configured (BORG_CLIENTS lists: none)"
    ]


def test_max_sessions_is_every_clients_default_and_a_client_may_have_its_own():
    clients = load({"BORG_CLIENTS": "web db", "MAX_SESSIONS": "3", "BORG_CLIENT_DB_MAX_SESSIONS": "20"}, "b").clients
    assert [(c.name, c.max_sessions) for c in clients] == [("db", 20), ("web", 3)]
    assert load({"BORG_CLIENTS": "web"}, "b").clients[0].max_sessions == 8


# The status page: STATUS_PORT, STATUS_PASSWORD(_FILE), STATUS_NO_PASSWORD

PASSWORD = "correct horse battery"


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            WEB_DB | {"STATUS_PORT": "8080"},
            "STATUS_PORT: the status page needs a password: set STATUS_PASSWORD_FILE (a secret), or "
            "STATUS_NO_PASSWORD=yes if only trusted hosts can reach this port (e.g. behind a reverse proxy that "
            "asks for one)",
        ),
        (
            WEB_DB | {"STATUS_PORT": "22", "STATUS_NO_PASSWORD": "yes"},
            "STATUS_PORT: 22 is SSH_PORT's port; pick another one",
        ),
        (
            WEB_DB | {"STATUS_PORT": "9100", "METRICS_PORT": "9100", "STATUS_NO_PASSWORD": "yes"},
            "STATUS_PORT: 9100 is METRICS_PORT's port; pick another one",
        ),
        (
            WEB_DB | {"STATUS_PORT": "8080", "STATUS_PASSWORD": "hunter2"},
            "STATUS_PASSWORD: has 7 characters; use at least 12 (e.g. from: head -c 24 /dev/urandom | base64)",
        ),
        (
            WEB_DB | {"STATUS_PORT": "8080", "STATUS_PASSWORD": PASSWORD, "STATUS_NO_PASSWORD": "yes"},
            "STATUS_PASSWORD: is set beside STATUS_NO_PASSWORD=yes; set only one",
        ),
        (
            WEB_DB | {"STATUS_PASSWORD": PASSWORD},
            "STATUS_PASSWORD: is set but STATUS_PORT is not; set STATUS_PORT to serve the status page",
        ),
        (
            WEB_DB | {"STATUS_PORT": "8080", "STATUS_NO_PASSWORD": "private"},
            "STATUS_NO_PASSWORD: 'private' is not a boolean; use one of yes, true, on, 1, no, false, off, 0",
        ),
    ],
)
def test_a_status_page_that_would_be_open_or_clash_is_refused_never_quoting_the_password(environ, problem):
    found = problems_of(environ)

    assert found == [problem]
    assert not any(environ.get("STATUS_PASSWORD", "\0") in line for line in found)


def test_the_status_page_takes_its_password_from_a_secret_file(tmp_path):
    secret = tmp_path / "status_password"
    secret.write_text(PASSWORD + "\n")

    config = load(WEB_DB | {"STATUS_PORT": "8080", "STATUS_PASSWORD_FILE": str(secret)}, "backup")

    assert (config.status_port, config.status_password) == (8080, PASSWORD)
    assert PASSWORD not in repr(config)


def test_a_status_page_without_a_password_needs_to_be_told_the_port_is_private():
    config = load(WEB_DB | {"STATUS_PORT": "8080", "STATUS_NO_PASSWORD": "yes"}, "backup")

    assert (config.status_port, config.status_password) == (8080, None)
