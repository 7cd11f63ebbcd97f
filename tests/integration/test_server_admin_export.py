"""ADMIN_KEY=generate: the server makes the client's admin key and exports it apart from the sidecar's pairing;
that key deletes and compacts, the append-only key still cannot, and switching it off locks the key out."""

from __future__ import annotations

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, docker, health, logs, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, repository_bytes, start_server

ADMIN_ENV = (
    'export BORG_RSH="ssh -i /admin-pairing/id_ed25519 -o UserKnownHostsFile=/admin-pairing/known_hosts '
    '-o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes" BORG_REPO=$(cat /admin-pairing/repo_url) '
    'BORG_PASSCOMMAND="cat /run/secrets/borg_passphrase" BORG_KEYS_DIR=/var/lib/borg-client/keys '
    "BORG_SECURITY_DIR=/tmp/security BORG_CACHE_DIR=/tmp/cache BORG_EXIT_CODES=modern && "
)


def test_a_generated_admin_key_prunes_and_compacts_and_is_locked_out_once_switched_off(sandbox, tmp_path):
    admin_pairing, copy = sandbox.volume("admin-pairing"), sandbox.volume("admin-copy")
    mount = ["-v", f"{admin_pairing}:/var/lib/borg-server/export-admin/web"]
    server = start_server(sandbox, ["web"], env={"BORG_CLIENT_WEB_ADMIN_KEY": "generate"}, extra=mount)
    web = make_client(sandbox, server, "web", tmp_path)

    def in_volume(volume: str, script: str) -> str:
        options = ["-v", f"{volume}:/v", "--entrypoint", "sh"]
        return sandbox.run("look", CLIENT_IMAGE, options, ["-c", script], detach=False).stdout

    def admin(script: str, pairing: str = admin_pairing):
        options = [*web.options(), "-v", f"{pairing}:/admin-pairing:ro", "--entrypoint", "sh"]
        return sandbox.run("admin", CLIENT_IMAGE, options, ["-c", ADMIN_ENV + script], detach=False, check=False)

    def backup(name: str, megabytes: int) -> None:
        fill_volume(sandbox, web.data, f"rm -f /data/* && head -c {megabytes}000000 /dev/urandom > /data/{name}.bin")
        assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": f"{name}-{{utcnow}}"}).returncode == 0

    # The export holds the sidecar's five files, the private key readable by its owner only.
    listing = in_volume(admin_pairing, "cd /v && stat -c '%n %a %u' * | sort")
    assert listing.splitlines() == ["client_name 644 0", "id_ed25519 600 0", "id_ed25519.pub 644 0",
                                    "known_hosts 644 0", "repo_url 644 0"]  # fmt: skip
    fingerprint = in_volume(admin_pairing, "ssh-keygen -lf /v/id_ed25519.pub").split()[1]
    shown = server.exec("borg-server", "show-client", "web").stdout
    assert f"admin key:      {fingerprint}  (generated, exported to /var/lib/borg-server/export-admin/web)" in shown
    sidecar = in_volume(server.exports["web"], "ssh-keygen -lf /v/id_ed25519.pub").split()[1]
    assert sidecar != fingerprint  # the sidecar's export keeps its own (append-only) key

    backup("first", 3)
    backup("second", 1)

    # The admin key lists, deletes and compacts: the space is freed at once.
    listed = admin("borg list --short")
    assert listed.returncode == 0, listed.stderr
    assert [name.split("-")[0] for name in listed.stdout.split()] == ["first", "second"]
    before = repository_bytes(server, "web")
    pruned = admin("borg delete --glob-archives 'first-*' && borg compact && borg list --short")
    assert pruned.returncode == 0, pruned.stderr
    assert [name.split("-")[0] for name in pruned.stdout.split()] == ["second"]
    assert repository_bytes(server, "web") < before - 2_500_000

    # The append-only key deletes too, but its compact frees nothing: the delete is only written down.
    before = repository_bytes(server, "web")
    for command in (["delete", "--glob-archives", "second-*"], ["compact"]):
        done = client_command(sandbox, web, ["borg-client", "borg", *command])
        assert done.returncode == 0, done.stderr
    assert repository_bytes(server, "web") >= before

    # ADMIN_KEY unset and the server restarted: the key that was exported is refused, its export is gone.
    sandbox.run("copy", CLIENT_IMAGE, ["-v", f"{admin_pairing}:/from:ro", "-v", f"{copy}:/to", "--entrypoint", "sh"],
                ["-c", "cp -p /from/* /to/"], detach=False)  # fmt: skip
    docker("rm", "-f", server.container)
    options = ["--network", server.network, "--hostname", server.container, "-v", f"{server.repositories}:/srv/borg",
               "-v", f"{server.state}:/var/lib/borg-server", *mount,
               "-v", f"{server.exports['web']}:/var/lib/borg-server/export/web",
               "-e", "BORG_CLIENTS=web", "-e", f"BORG_SERVER_NAME={server.container}"]  # fmt: skip
    sandbox.run("server", SERVER_IMAGE, options)
    wait_until(lambda: health(server.container) in ("healthy", "exited"), 60, "the restarted server")
    assert health(server.container) == "healthy", logs(server.container)

    # Asked with ssh itself: borg sometimes reports the closed connection before it has read ssh's message.
    refused = admin('server=$(sed "s|ssh://borg@||; s|:.*||" /admin-pairing/repo_url) && $BORG_RSH "borg@$server" '
                    "borg serve </dev/null", pairing=copy)  # fmt: skip
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr, refused.stderr
    assert admin("borg list --short", pairing=copy).returncode != 0
    assert in_volume(admin_pairing, "ls -A /v") == ""
    assert server.exec("ls", "-A", "/var/lib/borg-server/clients/web").stdout.split() == [
        "id_ed25519",
        "id_ed25519.pub",
    ]
    assert "admin key:      -" in server.exec("borg-server", "show-client", "web").stdout
    assert client_command(sandbox, web, ["list", "--short"]).returncode == 0  # the sidecar's key still works
