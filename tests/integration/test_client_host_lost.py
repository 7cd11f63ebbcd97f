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
from pathlib import Path

from borg_client.kit_format import KEY_MARK, PAPER_HEADER  # a key export's marks
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


def in_sidecar(sandbox, client, script: str, out: Path, env: dict | None = None, extra: list[str] = ()) -> None:
    """Run a shell script in one throw-away sidecar of client, with out mounted at /out for what it writes."""
    options = ["-v", f"{out}:/out", *extra, "--entrypoint", "sh"]
    client_command(sandbox, client, ["-c", script], env=env, extra=options, check=True)


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

    out = tmp_path / "out"
    out.mkdir()
    sums = "cd /backup/data && find . -type f | sort | xargs sha256sum"
    in_sidecar(sandbox, app, "borg-client run 2> /out/run.log; echo $? > /out/run.rc; "
               "borg-client status > /out/never; borg-client recovery-kit > /out/kit; "
               "borg-client recovery-kit --confirm-saved; "
               f"borg-client status > /out/confirmed; borg-client list --json > /out/list; {sums} > /out/sums",
               out, env=dumping, extra=socket)  # fmt: skip
    in_sidecar(sandbox, web, "borg-client run && borg-client recovery-kit > /out/web-kit", out)
    assert (out / "run.rc").read_text() == "0\n", (out / "run.log").read_text()
    assert ("recovery kit:          never confirmed saved: run borg-client recovery-kit, keep its output off this "
            "host, then borg-client recovery-kit --confirm-saved") in (out / "never").read_text()  # fmt: skip
    assert "recovery kit:          confirmed saved on " in (out / "confirmed").read_text()
    kit, web_kit = (out / "kit").read_text(), (out / "web-kit").read_text()
    repository = f"ssh://borg@{server.container}:22/./main"
    assert kit.startswith("Borg Appliance recovery kit of client app\n")
    for line in ("client:      app", f"repository:  {repository}", "encryption:  keyfile-blake2"):
        assert f"\n{line}\n" in kit
    assert app.passphrase_file.read_text().strip() not in kit
    pinned = server.exec("cat", "/var/lib/borg-server/export/app/known_hosts").stdout.strip()
    assert f"\n  {pinned}\n" in kit
    assert f"\n{PAPER_HEADER}\nid: " in kit
    old_archive = json.loads((out / "list").read_text())["archives"][0]["name"]
    original = (out / "sums").read_text()
    assert "./blob.bin" in original and "./sub/x.txt" in original

    # The host is lost: its state volume and its database with it. A new host has new, empty volumes.
    docker("rm", "-f", pg)
    new = dataclasses.replace(app, state=sandbox.volume("app-state-new"), data=sandbox.volume("app-data-new"))
    fill_volume(sandbox, new.data, "echo after the move > /data/new.txt")
    kits = tmp_path / "kits"
    kits.mkdir()
    (kits / "app-kit.txt").write_text(kit)
    (kits / "web-kit.txt").write_text(web_kit)
    web_key = web_kit[web_kit.index(KEY_MARK + " ") :].split("\n\n")[0] + "\n"
    (kits / "web.key").write_text(web_key)  # a plain borg key export, of another repository
    (kits / "notes.txt").write_text("my passphrase is somewhere else\n")
    mounted = ["-v", f"{kits}:/kits:ro"]

    names = ("web-kit.txt", "web.key", "notes.txt")
    in_sidecar(sandbox, new, f"for name in {' '.join(names)}; do borg-client import-key /kits/$name 2> /out/$name.err; "
               "echo $? > /out/$name.rc; done; BORG_KEY_IMPORT_FILE=/kits/notes.txt borg-client schedule "
               "2> /out/schedule.err; echo $? > /out/schedule.rc; find /var/lib/borg-client -type f > /out/state",
               out, extra=mounted)  # fmt: skip
    refusals = {name: (out / f"{name}.err").read_text() for name in names}
    assert {name: (out / f"{name}.rc").read_text() for name in names} == dict.fromkeys(names, "2\n"), refusals
    assert (
        refusals["web-kit.txt"]
        .strip()
        .endswith(
            f"borg-client: /kits/web-kit.txt is the recovery kit of client web (repository {repository}), but this "
            f"sidecar is client app (BORG_REPO {repository}): nothing was imported. Give it the kit of client app; if "
            "this sidecar really replaces web, set CLIENT_NAME and BORG_REPO as the kit says"
        )
    )
    web_id = web_key.split()[1]
    assert (
        refusals["web.key"]
        .strip()
        .endswith(
            f"borg-client: /kits/web.key holds the key of another repository (id {web_id[:16]}…), not of BORG_REPO "
            f"{repository}: nothing was imported. Give the key (or kit) saved from this client's repository"
        )
    )
    assert (
        refusals["notes.txt"]
        .strip()
        .endswith(
            f"borg-client: /kits/notes.txt holds no borg key: neither a line {KEY_MARK} followed by the repository id "
            f"(borg key export) nor {PAPER_HEADER} (borg key export --paper); nothing was imported"
        )
    )
    assert not any("Traceback" in text or "ERROR: No key file" in text for text in refusals.values())
    assert (out / "schedule.rc").read_text() == "2\n"
    assert "BORG_KEY_IMPORT_FILE: /kits/notes.txt holds no borg key" in (out / "schedule.err").read_text()
    assert [path for path in (out / "state").read_text().split() if "key" in path] == []

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

    exec_(sidecar, "borg-client", "restore", old_archive, "backup/data", "--target", "/tmp/restore")
    copied = exec_(sidecar, "sh", "-c", "cd /tmp/restore/backup/data && find . -type f | sort | xargs sha256sum")
    assert copied.stdout == original
    dump = exec_(sidecar, "borg-client", "restore-dump", old_archive, pg, "--into", pg_new, "--force", check=False)
    assert dump.returncode == 0, dump.stdout + dump.stderr
    assert psql(pg_new, PG_SUM).stdout.strip() == rows

    # A restart finds the key there: one line, nothing imported again; a wrong kit then refuses the start.
    docker("restart", sidecar)
    wait_until(lambda: "nothing to import" in logs(sidecar), 60, "the key import at the restart")
    assert "BORG_KEY_IMPORT_FILE: the state volume holds this key already (/var/lib/borg-client/keys/" in logs(sidecar)
    keys = "find /var/lib/borg-client/keys /var/lib/borg-client/key-export -type f | sort | xargs sha256sum"
    in_sidecar(sandbox, new, f"{keys} > /out/keys-before; BORG_KEY_IMPORT_FILE=/kits/web.key borg-client schedule "
               f"2> /out/other.err; echo $? > /out/other.rc; {keys} > /out/keys-after", out, extra=mounted)  # fmt: skip
    assert (out / "other.rc").read_text() == "2\n"
    assert (
        "borg-client: BORG_KEY_IMPORT_FILE: /kits/web.key holds the key of another repository"
        in (out / "other.err").read_text()
    )
    assert (out / "keys-after").read_text() == (out / "keys-before").read_text()
    assert "/keys/" in (out / "keys-before").read_text()
