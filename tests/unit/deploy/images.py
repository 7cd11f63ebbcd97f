"""What the images need from a deployment, read from the images' own sources (shared by the deploy tests).

The volumes are the Dockerfiles' VOLUME lines; the settings are checked by the entrypoints' own loaders
(borg_server.config.reader, borg_client.config) run on a deployment's environment, with every file a setting
names read from the secrets the documented steps make, mounted where the deployment mounts them.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from borg_client import config as client_config
from borg_server.config import reader as server_config
from borg_server.provision import pairing_secrets
from borg_server.records.configuration import Endpoint
from borg_server.system.ssh_keys import parse_public_key
from tests.unit.borg_server.sample_keys import ED25519, ED25519_OTHER, private_key

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
IMAGES = {"borg-appliance-server": ROOT / "Dockerfile.server", "borg-appliance-client": ROOT / "Dockerfile.client"}
SERVER_NAME = "borg-server"  # the name clients reach the server by: the Swarm service's, the Kubernetes Service's
HOST_KEY = parse_public_key(ED25519)  # the key new-client pins (the real one is derived from the host key)
CLIENT_PRIVATE_KEY = "-----BEGIN OPENSSH" + " PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"  # stand-in
ENDPOINT = Endpoint(SERVER_NAME, 22, None)


def image_of(reference: str) -> str | None:
    """Given an image reference (name:tag), return which of the appliance's images it is, or None."""
    name = reference.split(":")[0].split("/")[-1]
    return name if name in IMAGES else None


def volumes(image: str) -> list[str]:
    """Given an appliance image, return the paths its Dockerfile declares as VOLUME: state that must persist."""
    text = IMAGES[image].read_text()
    return [path for line in re.findall(r"^VOLUME\s+(\[.*\])", text, re.M) for path in json.loads(line)]


def kubernetes_client_secrets(name: str) -> dict[str, dict[str, str]]:
    """Given a client name, return the Secrets `new-client NAME --format kubernetes` makes: {name: files}."""
    text = pairing_secrets.render(name, "kubernetes", ENDPOINT, HOST_KEY, (CLIENT_PRIVATE_KEY, ED25519_OTHER))
    return {document["metadata"]["name"]: document["stringData"] for document in yaml.safe_load_all(text)}


def swarm_client_secrets(name: str, tmp_path: Path) -> dict[str, str]:
    """Given a client name, return the Docker secrets `borg-server new-client NAME` makes: {name: content}.

    Its script runs with a stand-in docker that keeps what `docker secret create NAME -` reads.
    """
    made = tmp_path / "made-secrets"
    made.mkdir(exist_ok=True)
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\ncat > "{made}/$3"\n')
    docker.chmod(0o755)
    script = pairing_secrets.render(name, "swarm", ENDPOINT, HOST_KEY, (CLIENT_PRIVATE_KEY, ED25519_OTHER))
    subprocess.run(["sh"], input=script, text=True, check=True, capture_output=True, env={"PATH": f"{tmp_path}:/bin"})
    return {path.name: path.read_text() for path in made.iterdir()}


def readme_secret(command: str) -> None:
    """Fail unless the README shows the step that makes a secret by hand (the host key's, the passphrase's)."""
    assert command in README.read_text(), f"README.md does not show: {command}"


HOST_KEY_TEXT = private_key()  # what borg-server new-host-key prints (a hand-built stand-in)
PASSPHRASE = "correct horse battery staple\n"


def load_settings(image: str, environment: dict[str, str], mounted: dict[str, dict[str, str]], root: Path):
    """Given an image, a container's environment and its mounted files ({mount path: {file: content}}), run the
    image's own configuration loader with every path below root; return the configuration (ConfigError if
    a setting is wrong, or names a file nothing mounts; NotPaired if the sidecar could not pair)."""
    for mount, files in mounted.items():
        directory = root / mount.lstrip("/")
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (directory / name).write_text(content)
    moved = {
        name: str(root / value.lstrip("/")) if value.startswith("/") and name.endswith("_FILE") else value
        for name, value in environment.items()
    }
    if image == "borg-appliance-server":
        return server_config.load(moved, "borg-server-0")
    return client_config.load(moved, pairing=root / "pairing")
