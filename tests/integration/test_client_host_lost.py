"""The application's host is lost: a new sidecar with only the recovery kit, the passphrase and the pairing lists,
restores files byte for byte and a PostgreSQL database, and goes on backing up into the same repository.

The story: client app backs up its files and a labelled PostgreSQL, prints its recovery kit and confirms
it saved; client web (same server) prints its own. Then app's state volume and database are gone. On a
new, empty state volume, a wrong key file, web's kit and a file with no key are refused, naming the file,
and nothing is written; a new sidecar given app's kit in BORG_KEY_IMPORT_FILE imports it at start, backs
up at once into the same repository, and restores the old archive's files and dump.
"""

from __future__ import annotations

import dataclasses
import json

from tests.harness.containers import CLIENT_IMAGE, POSTGRES_IMAGE, docker, exec_, logs, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, start_server

SOCKET = "/var/run/docker.sock"
PG_PASSWORD = "pg-Secret-4711"
PG_SUM = "SELECT count(*) || ' ' || md5(string_agg(id || ':' || name, ',' ORDER BY id)) FROM items"
FILES = "head -c 300000 /dev/urandom > /data/blob.bin && echo journal > /data/journal.txt && mkdir /data/sub && " \
        "printf 'x%.0s' $(seq 1 5000) > /data/sub/x.txt"  # fmt: skip


def psql(container: str, sql: str, database: str = "shop", check: bool = True):
    return exec_(container, "psql", "-X", "-A", "-t", "-U", "app", "-d", database, "-c", sql, check=check)


def start_postgres(sandbox, role: str, label: str, network: str) -> str:
    """Start a labelled PostgreSQL with an empty database shop; return its container once it answers."""
    sandbox.run(role, POSTGRES_IMAGE, ["--label", label, "--label", "borg-appliance.dump=postgres",
                "--label", "borg-appliance.dump.databases=shop", "--network", network, "-e", "POSTGRES_USER=app",
                "-e", f"POSTGRES_PASSWORD={PG_PASSWORD}", "-e", "POSTGRES_DB=shop"])  # fmt: skip
    container = sandbox.name(role)
    wait_until(lambda: psql(container, "SELECT 1", check=False).returncode == 0, 90, f"postgres {role}")
    return container


def digests(sandbox, volume: str, where: str = "/data") -> str:
    """Return the sha256 of every file under where in volume, sorted by path."""
    script = f"cd {where} && find . -type f | sort | xargs sha256sum"
    return sandbox.run("sum", CLIENT_IMAGE, ["-v", f"{volume}:/data", "--entrypoint", "sh"], ["-c", script],
                       detach=False).stdout  # fmt: skip


def state_files(sandbox, volume: str) -> list[str]:
    """Return every file in a sidecar's state volume, relative."""
    script = "cd /state && find . -type f | sort"
    listing = sandbox.run("peek", CLIENT_IMAGE, ["-v", f"{volume}:/state", "--entrypoint", "sh"], ["-c", script],
                          detach=False).stdout  # fmt: skip
    return listing.split()


def test_a_new_sidecar_with_only_the_kit_restores_everything_and_backs_up_on(sandbox, tmp_path, database_images):
    server = start_server(sandbox, ["app", "web"])
    app, web = make_client(sandbox, server, "app", tmp_path), make_client(sandbox, server, "web", tmp_path)
    label = f"borg-appliance-test.host-lost={sandbox.prefix}"
    dumping = {"BACKUP_DUMP_LABEL": label}
    socket = ["-v", f"{SOCKET}:{SOCKET}"]
    fill_volume(sandbox, app.data, FILES)
    fill_volume(sandbox, web.data, "echo web > /data/web.txt")
    pg = start_postgres(sandbox, "pg", label, server.network)
    psql(pg, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40)); "
             "INSERT INTO items SELECT g, 'item-' || g FROM generate_series(1, 1500) g")  # fmt: skip
    rows = psql(pg, PG_SUM).stdout.strip()
    assert rows.startswith("1500 ")

    first = client_command(sandbox, app, ["run"], env=dumping, extra=socket)
    assert first.returncode == 0, first.stderr
    never = client_command(sandbox, app, ["status"]).stdout
    assert "recovery kit:    never confirmed saved: run borg-client recovery-kit, keep its output off this host, " \
           "then borg-client recovery-kit --confirm-saved" in never  # fmt: skip
    printed = client_command(sandbox, app, ["recovery-kit"])
    assert printed.returncode == 0, printed.stderr
    kit = printed.stdout
    assert client_command(sandbox, app, ["recovery-kit", "--confirm-saved"]).returncode == 0
    assert "recovery kit:    confirmed saved on " in client_command(sandbox, app, ["status"]).stdout
    assert client_command(sandbox, web, ["run"]).returncode == 0
    web_kit = client_command(sandbox, web, ["recovery-kit"]).stdout
    repository = f"ssh://borg@{server.container}:22/./main"
    assert kit.startswith("Borg Appliance recovery kit of client app\n")
    for line in ("client:      app", f"repository:  {repository}", "encryption:  keyfile-blake2"):
        assert f"\n{line}\n" in kit
    assert app.passphrase_file.read_text().strip() not in kit
    pinned = server.exec("cat", "/var/lib/borg-server/export/app/known_hosts").stdout.strip()
    assert f"\n  {pinned}\n" in kit
    assert "\nBORG PAPER KEY v1\nid: " in kit
    old_archive = json.loads(client_command(sandbox, app, ["list", "--json"]).stdout)["archives"][0]["name"]
    original = digests(sandbox, app.data)

    # The host is lost: its state volume and its database with it. A new host has new, empty volumes.
    docker("rm", "-f", pg)
    new = dataclasses.replace(app, state=sandbox.volume("app-state-new"), data=sandbox.volume("app-data-new"))
    fill_volume(sandbox, new.data, "echo after the move > /data/new.txt")
    kits = tmp_path / "kits"
    kits.mkdir()
    (kits / "app-kit.txt").write_text(kit)
    (kits / "web-kit.txt").write_text(web_kit)
    web_key = web_kit[web_kit.index("BORG_KEY ") :].split("\n\n")[0] + "\n"
    (kits / "web.key").write_text(web_key)  # a plain borg key export, of another repository
    (kits / "notes.txt").write_text("my passphrase is somewhere else\n")
    mounted = ["-v", f"{kits}:/kits:ro"]

    refusals = {
        name: client_command(sandbox, new, ["import-key", f"/kits/{name}"], extra=mounted)
        for name in ("web-kit.txt", "web.key", "notes.txt")
    }
    assert {name: result.returncode for name, result in refusals.items()} == dict.fromkeys(refusals, 2)
    assert (
        refusals["web-kit.txt"]
        .stderr.strip()
        .endswith(
            f"borg-client: /kits/web-kit.txt is the recovery kit of client web (repository {repository}), but this "
            f"sidecar is client app (BORG_REPO {repository}): nothing was imported. Give it the kit of client app; if "
            "this sidecar really replaces web, set CLIENT_NAME and BORG_REPO as the kit says"
        )
    )
    web_id = web_key.split()[1]
    assert (
        refusals["web.key"]
        .stderr.strip()
        .endswith(
            f"borg-client: /kits/web.key holds the key of another repository (id {web_id[:16]}…), not of BORG_REPO "
            f"{repository}: nothing was imported. Give the key (or kit) saved from this client's repository"
        )
    )
    assert (
        refusals["notes.txt"]
        .stderr.strip()
        .endswith(
            "borg-client: /kits/notes.txt holds no borg key: neither a line BORG_KEY followed by the repository id "
            "(borg key export) nor BORG PAPER KEY v1 (borg key export --paper); nothing was imported"
        )
    )
    assert not any("Traceback" in result.stderr for result in refusals.values())
    unreadable = client_command(sandbox, new, ["schedule"], env={"BORG_KEY_IMPORT_FILE": "/kits/notes.txt"},
                                extra=mounted)  # fmt: skip
    assert unreadable.returncode == 2
    assert "BORG_KEY_IMPORT_FILE: /kits/notes.txt holds no borg key" in unreadable.stderr
    assert [path for path in state_files(sandbox, new.state) if "/keys/" in path or "key-export" in path] == []

    # The new sidecar: the kit as a secret, the passphrase, the pairing; it imports, then backs up at once.
    env = {**dumping, "BORG_KEY_IMPORT_FILE": "/run/secrets/recovery_kit"}
    secret = ["-v", f"{kits / 'app-kit.txt'}:/run/secrets/recovery_kit:ro"]
    pg_new = start_postgres(sandbox, "pg-new", label, server.network)
    sandbox.run("app-new", CLIENT_IMAGE, [*new.options(env), *socket, *secret])
    sidecar = sandbox.name("app-new")

    def last_run() -> dict | None:
        status = exec_(sidecar, "borg-client", "status", "--json", check=False)
        runs = json.loads(status.stdout)["last_runs"] if status.returncode == 0 else []
        return runs[-1] if runs and runs[-1]["status"] != "running" else None

    finished = wait_until(last_run, 240, "the first backup on the new host")
    assert finished["status"] == "success", logs(sidecar)
    started = logs(sidecar)
    assert f"BORG_KEY_IMPORT_FILE: imported the key of {repository} from /run/secrets/recovery_kit into " \
           "/var/lib/borg-client/keys/" in started  # fmt: skip
    assert "initialis" not in started and "Traceback" not in started
    archives = json.loads(exec_(sidecar, "borg-client", "list", "--json").stdout)["archives"]
    assert [archive["name"] for archive in archives] == [old_archive, finished["archive"]]

    restored = exec_(sidecar, "borg-client", "restore", old_archive, "backup/data", "--target", "/tmp/restore")
    assert restored.returncode == 0
    copied = exec_(sidecar, "sh", "-c", "cd /tmp/restore/backup/data && find . -type f | sort | xargs sha256sum")
    assert copied.stdout == original
    dump = exec_(sidecar, "borg-client", "restore-dump", old_archive, pg, "--into", pg_new, "--force", check=False)
    assert dump.returncode == 0, dump.stdout + dump.stderr
    assert psql(pg_new, PG_SUM).stdout.strip() == rows

    # A restart finds the key there: one line, nothing imported again; a wrong kit then refuses the start.
    docker("restart", sidecar)
    wait_until(lambda: "nothing to import" in logs(sidecar), 60, "the key import at the restart")
    assert "BORG_KEY_IMPORT_FILE: the state volume holds this key already (/var/lib/borg-client/keys/" in logs(sidecar)
    before = state_files(sandbox, new.state)
    other = client_command(sandbox, new, ["schedule"], env={"BORG_KEY_IMPORT_FILE": "/kits/web.key"}, extra=mounted)
    assert other.returncode == 2
    assert "borg-client: BORG_KEY_IMPORT_FILE: /kits/web.key holds the key of another repository" in other.stderr
    assert [path for path in state_files(sandbox, new.state) if "key" in path] == [
        path for path in before if "key" in path
    ]
