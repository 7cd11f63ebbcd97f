"""The three ways of backing up that the benchmark compares, each timed inside its container.

(a) plain borg to a local repository, (b) plain borg over ssh to a plain sshd, (c) the appliance
(sidecar → server). (a) and (b) run borg from the client image, so all three use the same borg.
Every step's seconds are measured inside the container (`date +%s%N`), so container start-up is
not counted against anyone.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, Sandbox, docker, wait_until
from tests.harness.stack import make_client, start_server

COMPRESSION = "zstd,3"
# `step NAME COMMAND…` runs COMMAND and prints "NAME_ms <milliseconds>"; its own output goes to stderr.
TIMER = """
ms() { echo $(( $(date +%s%N) / 1000000 )); }
step() { name=$1; shift; start=$(ms); "$@" >&2 || exit 1; echo "${name}_ms $(( $(ms) - start ))"; }
"""
PLAIN_ENV = (
    "export BORG_PASSPHRASE=bench BORG_BASE_DIR=/state BORG_EXIT_CODES=modern "
    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes"
)


def steps(output: str) -> dict[str, float]:
    """Given the "NAME value" lines a timed script printed, return {name: value}; "_ms" values become seconds."""
    result = {}
    for name, value in (line.split() for line in output.splitlines() if line.strip()):
        if name.endswith("_ms"):
            result[name.removesuffix("_ms")] = int(value) / 1000
        else:
            result[name] = int(value)
    return result


def mounts(sandbox: Sandbox, role: str, data: Path) -> list[str]:
    """Return the data (read-only), restore and state mounts of one measured container."""
    return ["-v", f"{data}:/backup/data:ro", "-v", f"{sandbox.volume(role + '-restore')}:/restore",
            "-v", f"{sandbox.volume(role + '-state')}:/state"]  # fmt: skip


def plain_script(repository: str, compression: str) -> str:
    """Return the shell script for plain borg: init (untimed), first backup, unchanged re-run, restore."""
    create = f"borg create --compression {compression} {repository}"
    return f"""{TIMER}
{PLAIN_ENV}
borg init -e keyfile-blake2 {repository} >&2 || exit 1
step first {create}::first /backup/data
step rerun {create}::second /backup/data
mkdir -p /restore/r && cd /restore/r && step restore borg extract {repository}::first
"""


def run_script(sandbox: Sandbox, role: str, options: list[str], script: str) -> str:
    result = sandbox.run(
        role, CLIENT_IMAGE, [*options, "--entrypoint", "sh"], ["-c", script], detach=False, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{role} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def local(sandbox: Sandbox, data: Path, compression: str = COMPRESSION) -> dict[str, float]:
    """(a) plain borg into a repository on a local volume; also return the repository's size."""
    options = [*mounts(sandbox, "local", data), "-v", f"{sandbox.volume('local-repo')}:/repo"]
    script = plain_script("/repo/r", compression) + 'echo "size $(du -sb /repo/r | cut -f1)"'
    return steps(run_script(sandbox, "local", options, script))


PLAIN_SSHD = """
set -e
useradd -m -s /bin/sh borg && usermod -p '*' borg && chown borg:borg /repos
mkdir -p /home/borg/.ssh && cp /keys/id_ed25519.pub /home/borg/.ssh/authorized_keys
chown -R borg:borg /home/borg/.ssh && chmod 700 /home/borg/.ssh
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/host_key && cp /etc/ssh/host_key.pub /keys/host_key.pub
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e -o HostKey=/etc/ssh/host_key -o PasswordAuthentication=no -o UsePAM=no
"""


def plain_ssh(sandbox: Sandbox, data: Path) -> dict[str, float]:
    """(b) plain borg over ssh to a plain sshd (no forced command, no restrictions) in the server image.

    Its repository is on a volume, as the appliance's is (not in the container's own file system).
    """
    network = sandbox.network("plain-net")
    keys = sandbox.volume("plain-keys", memory=False)  # on disk: written and read by two containers in turn
    sandbox.run("keygen", CLIENT_IMAGE, ["-v", f"{keys}:/keys", "--entrypoint", "ssh-keygen"],
                ["-q", "-t", "ed25519", "-N", "", "-f", "/keys/id_ed25519"], detach=False)  # fmt: skip
    options = ["--network", network, "-v", f"{keys}:/keys", "-v", f"{sandbox.volume('plain-repos')}:/repos"]
    sandbox.run("sshd", SERVER_IMAGE, [*options, "--entrypoint", "sh"], ["-c", PLAIN_SSHD])
    sshd = sandbox.name("sshd")
    wait_until(lambda: "Server listening" in docker("logs", sshd).stderr, 30, "the plain sshd")
    rsh = ("ssh -i /keys/id_ed25519 -o UserKnownHostsFile=/tmp/known_hosts -o StrictHostKeyChecking=yes "
           "-o BatchMode=yes")  # fmt: skip
    script = (f'echo "{sshd} $(cut -d" " -f1,2 /keys/host_key.pub)" > /tmp/known_hosts\nexport BORG_RSH="{rsh}"\n'
              + plain_script(f"ssh://borg@{sshd}:22/repos/r", COMPRESSION))  # fmt: skip
    options = ["--network", network, "-v", f"{keys}:/keys:ro", *mounts(sandbox, "plain", data)]
    return steps(run_script(sandbox, "plain-client", options, script))


APPLIANCE = """{timer}
borg-client borg init --encryption keyfile-blake2 >&2 || exit 1
step first borg-client run
step rerun borg-client run
archive=$(borg-client list --short | head -n 1)
step restore borg-client restore "$archive" --target /restore/r
"""


def appliance(sandbox: Sandbox, data: Path, tmp: Path) -> dict[str, float]:
    """(c) the appliance: a sidecar's `borg-client run` against the server image, as a user runs it."""
    server = start_server(sandbox, ["bench"])
    client = make_client(sandbox, server, "bench", tmp)
    options = [*client.options({"BORG_COMPRESSION": COMPRESSION}, data=str(data)),
               "-v", f"{sandbox.volume('appliance-restore')}:/restore"]  # fmt: skip
    return steps(run_script(sandbox, "appliance", options, APPLIANCE.format(timer=TIMER)))
