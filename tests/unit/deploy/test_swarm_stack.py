"""deploy/swarm/stack.yaml is one `docker stack deploy` accepts and gives the images what they need.

The integration scenario (tests/integration/test_swarm.py) deploys it; this checks, without Docker, what
a swarm would only report at run time: secrets declared and made by a documented step, images named,
the images' volumes on named volumes, and the settings accepted by the entrypoints' own loaders.
"""

from __future__ import annotations

import pytest
import yaml

from borg_client import config as client_config
from borg_client.config import ClientConfig
from borg_server.records.configuration import ServerConfig
from tests.unit.deploy import images

STACK = yaml.safe_load((images.ROOT / "deploy" / "swarm" / "stack.yaml").read_text())
SERVICES = STACK["services"]
APPLIANCE = {name: images.image_of(spec["image"]) for name, spec in SERVICES.items() if images.image_of(spec["image"])}
BY_HAND = {  # the secrets the README makes by hand; the client's come from borg-server new-client
    "borg_host_key": ("docker secret create borg_host_key host_key", images.HOST_KEY_TEXT),
    "borg_app_passphrase": ("docker secret create borg_app_passphrase passphrase", images.PASSPHRASE),
}


def secrets_of(service: dict) -> dict[str, dict]:
    """Given a service, return its secrets by source name, each as the long syntax ({source, target, mode})."""
    found = {}
    for secret in service.get("secrets", []):
        long = {"source": secret} if isinstance(secret, str) else dict(secret)
        found[long["source"]] = {"target": long["source"], **long}
    return found


def made_secrets(tmp_path) -> dict[str, str]:
    """Return every secret the README's steps make, by name: the client's by borg-server new-client app."""
    made = images.swarm_client_secrets("app", tmp_path)
    for name, (command, content) in BY_HAND.items():
        images.readme_secret(command)
        made[name] = content
    return made


def test_the_stack_has_what_docker_stack_deploy_refuses_or_ignores_nowhere():
    assert STACK["version"].startswith("3.")
    for name, service in SERVICES.items():
        assert not {"depends_on", "build", "container_name", "links"} & set(service), name
    assert {network["driver"] for network in STACK["networks"].values()} == {"overlay"}


def test_the_server_and_the_sidecar_use_the_appliance_images_with_the_tag_to_choose():
    assert {name: SERVICES[name]["image"] for name in APPLIANCE} == {
        "borg-server": "borg-appliance-server:${IMAGE_TAG:-latest}",
        "backup-app": "borg-appliance-client:${IMAGE_TAG:-latest}",
    }


def test_every_secret_used_is_declared_external_and_made_by_a_documented_step(tmp_path):
    used = {name for service in SERVICES.values() for name in secrets_of(service)}
    made = made_secrets(tmp_path)

    assert used == set(STACK["secrets"])
    assert all(secret == {"external": True} for secret in STACK["secrets"].values())
    assert used == set(made)


@pytest.mark.parametrize("name", sorted(APPLIANCE))
def test_every_volume_an_image_declares_is_a_named_volume(name):
    mounts = dict(volume.split(":")[1::-1] for volume in SERVICES[name]["volumes"])
    for path in images.volumes(APPLIANCE[name]):
        assert mounts.get(path) in STACK["volumes"], f"{name} does not keep {path} on a named volume"


@pytest.mark.parametrize("name", sorted(APPLIANCE))
def test_the_settings_the_image_reads_resolve_through_the_mounted_secrets(name, tmp_path, monkeypatch):
    service = SERVICES[name]
    if "/var/run/docker.sock:/var/run/docker.sock" in service["volumes"]:  # BACKUP_STOP_LABEL needs it mounted
        (tmp_path / "docker.sock").touch()
        monkeypatch.setattr(client_config, "DOCKER_SOCKET", str(tmp_path / "docker.sock"))
    made = made_secrets(tmp_path)
    mounted = {}
    for source, secret in secrets_of(service).items():
        mounted[secret["target"]] = made[source]
        if "PRIVATE KEY" in made[source] and name != "borg-server":  # the server copies its key with mode 600
            assert secret.get("mode") == 0o400, f"{name}: ssh refuses the private key {source} unless mode 0400"

    loaded = images.load_settings(APPLIANCE[name], service["environment"], {"/run/secrets": mounted}, tmp_path)

    if isinstance(loaded, ServerConfig):
        assert loaded.host_key is not None and all(client.key for client in loaded.clients)
        assert loaded.server_host == images.SERVER_NAME
    else:
        assert isinstance(loaded, ClientConfig)
        assert (loaded.client, loaded.repository) == ("app", f"ssh://borg@{images.SERVER_NAME}:22/./main")
        assert loaded.stop_label == "borg-appliance.stop=app"


def test_every_service_restarts_and_the_appliance_services_have_healthchecks():
    for name, service in SERVICES.items():
        assert service["deploy"]["restart_policy"]["condition"] == "any", name
    assert SERVICES["borg-server"]["healthcheck"]["test"] == ["CMD", "borg-server", "healthcheck"]
    assert SERVICES["backup-app"]["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert SERVICES["app"]["labels"] == {"borg-appliance.stop": "app"}
