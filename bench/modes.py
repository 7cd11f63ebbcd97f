"""The three ways of backing up that the benchmark compares, each timed inside its container.

(a) plain borg to a local repository, (b) plain borg over ssh to a plain sshd, (c) the appliance
(sidecar → server), (r) restic over sftp to the same kind of plain sshd as (b) (Debian's restic, its
defaults; bench/images/restic). (a) and (b) run borg from the client image, so all three borgs are the same.
Every step's seconds are measured inside the container (`date +%s%N`), so container start-up is
not counted against anyone. Docker probes the appliance's containers as in production (the images' own
health intervals, bench_sandbox), and never plain borg's or its sshd's (NOT_PROBED): nothing probes those
in production either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.harness.containers import BASE_IMAGE, CLIENT_IMAGE, IMAGE_TAG, SERVER_IMAGE, Sandbox, docker, wait_until
from tests.harness.stack import make_client, start_server

COMPRESSION = "zstd,3"
RESTIC_IMAGE = f"borg-appliance-bench-restic:{IMAGE_TAG}"  # bench/images/restic, built by build_restic_image()
# `step NAME COMMAND…` runs COMMAND and prints "NAME_ms <milliseconds>"; its own output goes to stderr.
TIMER = """
ms() { echo $(( $(date +%s%N) / 1000000 )); }
step() { name=$1; shift; start=$(ms); "$@" >&2 || exit 1; echo "${name}_ms $(( $(ms) - start ))"; }
"""
NOT_PROBED = "--no-healthcheck"
PLAIN_ENV = (
    "export BORG_PASSPHRASE=bench BORG_BASE_DIR=/state BORG_EXIT_CODES=modern "
    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes"
)


def bench_sandbox() -> Sandbox:
    """Return the bench's sandbox: volumes in memory, the appliance's containers probed at the images' own intervals.

    The scenarios' probes every 2 s slowed a first backup of 50,000 small files to the appliance's server by
    8 % (paired, 4 repetitions: 0.92 against the plain sshd with them, 1.03 with the images' own).
    """
    return Sandbox(memory=True, health_interval=None)


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


def run_script(sandbox: Sandbox, role: str, options: list[str], script: str, image: str = CLIENT_IMAGE) -> str:
    result = sandbox.run(role, image, [*options, "--entrypoint", "sh"], ["-c", script], detach=False, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{role} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def local(sandbox: Sandbox, data: Path, compression: str = COMPRESSION) -> dict[str, float]:
    """(a) plain borg into a repository on a local volume; also return the repository's size."""
    options = [*mounts(sandbox, "local", data), "-v", f"{sandbox.volume('local-repo')}:/repo", NOT_PROBED]
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


RSH = ("ssh -i /keys/id_ed25519 -o UserKnownHostsFile=/tmp/known_hosts -o StrictHostKeyChecking=yes "
       "-o BatchMode=yes")  # fmt: skip


def pairing_rsh(pairing: str) -> str:
    """Given where a client's pairing export of the appliance's server is mounted, return plain borg's BORG_RSH for it
    (its key and its pinned host key, as the sidecar's ssh uses them)."""
    return (f"ssh -i {pairing}/id_ed25519 -o UserKnownHostsFile={pairing}/known_hosts -o StrictHostKeyChecking=yes "
            "-o BatchMode=yes -o IdentitiesOnly=yes")  # fmt: skip


@dataclass(frozen=True)
class PlainSshd:
    """A running plain sshd: its network, the volume with the client key and host key, its host name."""

    network: str
    keys: str
    host: str

    def pin(self) -> str:
        """Return the shell line that pins the sshd's host key in /tmp/known_hosts (what RSH reads)."""
        return f'echo "{self.host} $(cut -d" " -f1,2 /keys/host_key.pub)" > /tmp/known_hosts'

    def options(self) -> list[str]:
        """Return the docker run options of a container that talks to it: its network and the keys."""
        return ["--network", self.network, "-v", f"{self.keys}:/keys:ro"]


def start_plain_sshd(sandbox: Sandbox) -> PlainSshd:
    """Start a plain sshd (no forced command, no restrictions) in the server image, repositories on a volume.

    The image's /etc/ssh/sshd_config offers the sftp subsystem (Debian's sftp-server), which (r) uses.
    """
    network = sandbox.network("plain-net")
    keys = sandbox.volume("plain-keys", memory=False)  # on disk: written and read by two containers in turn
    sandbox.run("keygen", CLIENT_IMAGE, ["-v", f"{keys}:/keys", "--entrypoint", "ssh-keygen"],
                ["-q", "-t", "ed25519", "-N", "", "-f", "/keys/id_ed25519"], detach=False)  # fmt: skip
    options = ["--network", network, "-v", f"{keys}:/keys", "-v", f"{sandbox.volume('plain-repos')}:/repos", NOT_PROBED]
    sandbox.run("sshd", SERVER_IMAGE, [*options, "--entrypoint", "sh"], ["-c", PLAIN_SSHD])
    sshd = sandbox.name("sshd")
    wait_until(lambda: "Server listening" in docker("logs", sshd).stderr, 30, "the plain sshd")
    return PlainSshd(network, keys, sshd)


def plain_ssh(sandbox: Sandbox, data: Path) -> dict[str, float]:
    """(b) plain borg over ssh to a plain sshd. Its repository is on a volume, as the appliance's is."""
    sshd = start_plain_sshd(sandbox)
    script = (f'{sshd.pin()}\nexport BORG_RSH="{RSH}"\n'
              + plain_script(f"ssh://borg@{sshd.host}:22/repos/r", COMPRESSION))  # fmt: skip
    options = [*sshd.options(), *mounts(sandbox, "plain", data), NOT_PROBED]
    return steps(run_script(sandbox, "plain-client", options, script))


RESTIC = """{timer}
{pin}
mkdir -p /root/.ssh && printf '%s\\n' 'Host *' ' IdentityFile /keys/id_ed25519' \\
  ' UserKnownHostsFile /tmp/known_hosts' ' StrictHostKeyChecking yes' ' BatchMode yes' > /root/.ssh/config
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=sftp:borg@{host}:/repos/restic RESTIC_CACHE_DIR=/state/cache
restic init >&2 || exit 1
step first restic backup /backup/data
step rerun restic backup /backup/data
step restore restic restore latest --target /restore/r
"""


def restic(sandbox: Sandbox, data: Path) -> dict[str, float]:
    """(r) restic over sftp to a plain sshd like (b)'s; restic's defaults (compression auto), cache in memory."""
    sshd = start_plain_sshd(sandbox)
    script = RESTIC.format(timer=TIMER, pin=sshd.pin(), host=sshd.host)
    options = [*sshd.options(), *mounts(sandbox, "restic", data)]
    return steps(run_script(sandbox, "restic-client", options, script, RESTIC_IMAGE))


def build_restic_image() -> None:
    """Build (r)'s image from Debian's packages, tagged with IMAGE_TAG (quick when Docker has it cached)."""
    print(f"building {RESTIC_IMAGE} (bench/images/restic)")
    docker("build", "-q", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", RESTIC_IMAGE,
           str(Path(__file__).parent / "images" / "restic"), timeout=1800)  # fmt: skip


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
