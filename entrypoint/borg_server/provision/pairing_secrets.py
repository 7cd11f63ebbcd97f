"""Pairing without a shared volume: the secrets a client on another host needs, made in one step.

`borg-server new-client NAME` makes the client's key pair and prints, with the known_hosts line of the
server's host key and the repository URL (provision/pairing.py's formats), either a shell script that creates the
Docker Swarm secrets (`| sh` on a manager), Kubernetes Secret manifests (`| kubectl apply -f -`), or a shell
script that writes a pairing directory on a compose host (`| sh` there). The Kubernetes client Secret and the
compose directory hold exactly the files of a pairing export, so mounted at /pairing they pair the sidecar,
its name included, with no further setting.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from borg_common.files import read_regular
from borg_server.config.names import env_name
from borg_server.provision import pairing
from borg_server.records.configuration import Endpoint
from borg_server.system import commands
from borg_server.system.paths import Paths
from borg_server.system.ssh_keys import KeyProblem, PublicKey, parse_public_key

FORMATS = ("swarm", "kubernetes", "compose")
SECRETS_DIRECTORY = "/run/secrets"  # where Docker Swarm mounts a service's secrets


class NoHostKey(Exception):
    """The server has no host key yet (none configured, none generated): nothing for clients to pin."""


def server_host_key(endpoint: Endpoint, paths: Paths) -> PublicKey:
    """Return the host key clients pin: BORG_HOST_KEY_FILE's, else the one generated in the state volume;
    raise NoHostKey if there is neither."""
    if endpoint.host_key is not None:
        return endpoint.host_key.public
    public = Path(f"{paths.host_key}.pub")
    if not public.exists():
        raise NoHostKey(
            "no host key yet: set BORG_HOST_KEY_FILE to one (borg-server new-host-key makes it) "
            "or start the server once with its state volume"
        )
    try:
        return parse_public_key(read_regular(public, 64 * 1024).decode(errors="replace"))
    except (OSError, KeyProblem) as problem:
        raise NoHostKey(f"the host key {public} cannot be used ({problem}); restart the server to repair it") from None


def new_client_keys(name: str) -> tuple[str, str]:
    """Given a client name, return a new ed25519 key pair for it: (private key text, public key line)."""
    with tempfile.TemporaryDirectory(prefix="borg-new-client.") as directory:
        private_key = Path(directory) / "id_ed25519"
        commands.generate_keypair(private_key, f"borg-appliance client {name}")
        return private_key.read_text(), Path(f"{private_key}.pub").read_text().strip()


def swarm_names(name: str) -> dict[str, str]:
    """Given a client name, return its Docker secrets' names: {ssh_key, ssh_key_pub, known_hosts: name}."""
    return {part: f"borg_{name}_{part}" for part in ("ssh_key", "ssh_key_pub", "known_hosts")}


def kubernetes_names(name: str) -> dict[str, str]:
    """Given a client name, return its Kubernetes Secrets' names (DNS labels): {client, server: name}."""
    label = name.replace("_", "-")
    return {"client": f"borg-{label}-client", "server": f"borg-{label}-server"}


def render(name: str, output: str, endpoint: Endpoint, host_key: PublicKey, keys: tuple[str, str]) -> str:
    """Given a client's name, the output format, the endpoint, the host key and the client's key pair, return
    what `new-client` prints: a shell script creating Docker secrets, or Kubernetes Secret manifests."""
    private_key, public_key = keys
    known_hosts = pairing.known_hosts_line(host_key, endpoint)
    url = pairing.repository_url(endpoint)
    if output == "kubernetes":
        return kubernetes_secrets(name, private_key, public_key, known_hosts, url)
    if output == "compose":
        return compose_script(name, private_key, public_key, known_hosts, url)
    return swarm_script(name, private_key, public_key, known_hosts, url)


def swarm_script(name: str, private_key: str, public_key: str, known_hosts: str, url: str) -> str:
    """Return a POSIX shell script that creates client name's Docker secrets (run on a swarm manager)."""
    secrets = swarm_names(name)
    variable = f"BORG_CLIENT_{env_name(name)}_KEY_FILE"
    lines = [
        f"# The secrets of backup client {name} for Docker Swarm: pipe this into sh on a manager node.",
        f"# Server:  BORG_CLIENTS lists {name}; {variable}={SECRETS_DIRECTORY}/{secrets['ssh_key_pub']}",
        f"# Sidecar: CLIENT_NAME={name} BORG_REPO={url}",
        f"#          BORG_SSH_KEY_FILE={SECRETS_DIRECTORY}/{secrets['ssh_key']} (mount it with mode: 0400)",
        f"#          BORG_KNOWN_HOSTS_FILE={SECRETS_DIRECTORY}/{secrets['known_hosts']}",
        "set -e",
    ]
    for part, content in (("ssh_key", private_key), ("ssh_key_pub", public_key), ("known_hosts", known_hosts)):
        lines += [
            f"docker secret create {secrets[part]} - >/dev/null <<'BORG_APPLIANCE_SECRET'",
            content.strip(),
            "BORG_APPLIANCE_SECRET",
            f"echo 'created secret {secrets[part]}'",
        ]
    return "\n".join(lines) + "\n"


def kubernetes_secrets(name: str, private_key: str, public_key: str, known_hosts: str, url: str) -> str:
    """Return two Secret manifests: the sidecar's (a pairing export: key, known_hosts, URL, name) and the
    server's (the public key only, so the server never holds the client's private key)."""
    secrets = kubernetes_names(name)
    variable = f"BORG_CLIENT_{env_name(name)}_KEY_FILE"
    client = {
        "id_ed25519": private_key.strip() + "\n",
        "known_hosts": known_hosts,
        "repo_url": url + "\n",
        "client_name": name + "\n",
    }
    documents = [
        secret(secrets["client"], client),
        secret(secrets["server"], {"id_ed25519.pub": public_key + "\n"}),
    ]
    header = (
        f"# The Secrets of backup client {name} for Kubernetes: pipe this into kubectl apply -f -\n"
        f"# Sidecar: mount Secret {secrets['client']} at /pairing (defaultMode: 0400): nothing else to set.\n"
        f"# Server:  BORG_CLIENTS lists {name}; mount Secret {secrets['server']} and point {variable} at its\n"
        "#          id_ed25519.pub.\n"
    )
    return header + yaml.dump_all(documents, Dumper=_LiteralDumper, sort_keys=False)


def compose_script(name: str, private_key: str, public_key: str, known_hosts: str, url: str) -> str:
    """Return a POSIX shell script that writes client name's pairing export into ./borg-pairing-NAME on the
    sidecar's host (private files, nothing overwritten), with the compose lines of both sides in comments."""
    directory = f"borg-pairing-{name}"
    files = {"id_ed25519": private_key, "known_hosts": known_hosts, "repo_url": url, "client_name": name}
    lines = [
        f"# The pairing export of backup client {name} for a compose sidecar on another host: pipe this into sh",
        f"# there, in the directory of its compose.yaml. It writes ./{directory} (the client's private key,",
        "# the server's pinned host key, the repository URL and the client's name; mode 0700, its files 0600).",
        "#",
        "# Server:  BORG_CLIENTS lists it, and its public key is set:",
        f"#            BORG_CLIENT_{env_name(name)}_KEY: {public_key}",
        "# Sidecar: mount the directory at /pairing; archives are named after CLIENT_NAME, which must not change:",
        "#            volumes:",
        f"#              - ./{directory}:/pairing:ro",
        "#            environment:",
        f"#              CLIENT_NAME: {name}",
        "#              BORG_PASSPHRASE_FILE: /run/secrets/borg_passphrase",
        "set -e",
        "umask 077",
        f'if [ -e {directory} ]; then echo "{directory} exists already: nothing was written" >&2; exit 1; fi',
        f"mkdir {directory}",
    ]
    for file, content in files.items():
        lines += [f"cat > {directory}/{file} <<'BORG_APPLIANCE_SECRET'", content.strip(), "BORG_APPLIANCE_SECRET"]
    lines.append(f"echo 'wrote {directory}: mount it at /pairing in the sidecar of {name}'")
    return "\n".join(lines) + "\n"


def secret(name: str, data: dict[str, str]) -> dict:
    """Given a Secret's name and its files, return the manifest (stringData: kubectl encodes it)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "borg-appliance"}},
        "type": "Opaque",
        "stringData": data,
    }


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line strings (keys, known_hosts lines) as YAML literal blocks, readable as they are."""


_LiteralDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)
