"""deploy/kubernetes: every manifest passes the Kubernetes schemas, and the pods give the images what they need.

What the images need is read from the images' own sources (images.py): the Dockerfiles' volumes, and
the settings the entrypoints read, checked by their own loaders against the Secrets the documented steps
make, mounted where the manifests mount them.
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from borg_client.config import ClientConfig
from borg_server.records.configuration import ServerConfig
from tests.unit.deploy import images

KUBERNETES_VERSION = "1.31.0"  # the version the manifests are validated against (README: "Beyond one host")
DIRECTORY = images.ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted([*DIRECTORY.glob("*.yaml"), *DIRECTORY.glob("variants/*.yaml")])
# The Secrets the README makes by hand; the clients' come from borg-server new-client (images.py).
BY_HAND = {
    "borg-host-key": (
        "kubectl create secret generic borg-host-key --from-file=ssh_host_ed25519_key=host_key",
        {"ssh_host_ed25519_key": images.HOST_KEY_TEXT},
    ),
    "borg-app-passphrase": (
        "kubectl create secret generic borg-app-passphrase --from-file=passphrase=passphrase",
        {"passphrase": images.PASSPHRASE},
    ),
}


def documents() -> list[tuple[str, dict]]:
    return [(path.relative_to(DIRECTORY).as_posix(), document) for path in MANIFESTS
            for document in yaml.safe_load_all(path.read_text()) if document]  # fmt: skip


def pod_of(document: dict) -> tuple[dict, list[dict]]:
    """Given a workload, return its pod spec and its volume claim templates (StatefulSet)."""
    spec = document["spec"]
    if document["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"], []
    return spec["template"]["spec"], spec.get("volumeClaimTemplates", [])


def appliance_containers() -> list[tuple[str, str, dict, dict, list[dict]]]:
    """Return (manifest, image, container, pod spec, claim templates) for every container of an appliance image."""
    found = []
    for manifest, document in documents():
        if document["kind"] in ("StatefulSet", "Deployment", "CronJob"):
            pod, claims = pod_of(document)
            for container in pod["containers"]:
                if images.image_of(container["image"]):
                    found.append((manifest, images.image_of(container["image"]), container, pod, claims))
    return found


def secret_files(name: str) -> dict[str, str]:
    """Given a Secret's name, return its files as the documented steps make it; fail if no step makes it."""
    if name in BY_HAND:
        command, files = BY_HAND[name]
        images.readme_secret(command)
        return files
    client = name.removeprefix("borg-").rsplit("-", 1)[0]
    made = images.kubernetes_client_secrets(client)
    assert name in made, f"Secret {name} is made by no documented step"
    return made[name]


def test_there_are_manifests_for_the_server_the_sidecar_and_the_cronjob():
    kinds = sorted(document["kind"] for _manifest, document in documents())
    assert kinds == [
        "CronJob",
        "Deployment",
        "PersistentVolumeClaim",
        "PersistentVolumeClaim",
        "Service",
        "StatefulSet",
    ]


@pytest.mark.parametrize(("manifest", "document"), documents(), ids=lambda value: str(value)[:40])
def test_every_manifest_passes_the_kubernetes_schemas_strictly(manifest, document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(("manifest", "image", "container", "pod", "claims"), appliance_containers(),
                         ids=lambda value: value if isinstance(value, str) else "")  # fmt: skip
def test_every_volume_an_image_declares_is_mounted_from_a_persistent_claim(manifest, image, container, pod, claims):
    persistent = {volume["name"] for volume in pod.get("volumes", []) if "persistentVolumeClaim" in volume}
    persistent |= {claim["metadata"]["name"] for claim in claims}
    mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
    for path in images.volumes(image):
        assert path in mounts, f"{manifest}: {container['name']} does not mount {path}"
        assert mounts[path] in persistent, f"{manifest}: {path} is not on a PersistentVolumeClaim"


@pytest.mark.parametrize(("manifest", "image", "container", "pod", "claims"), appliance_containers(),
                         ids=lambda value: value if isinstance(value, str) else "")  # fmt: skip
def test_the_settings_the_image_reads_resolve_through_the_mounted_secrets(
    manifest, image, container, pod, claims, tmp_path
):
    secrets = {volume["name"]: volume["secret"] for volume in pod.get("volumes", []) if "secret" in volume}
    mounted = {}
    for mount in container.get("volumeMounts", []):
        if mount["name"] in secrets:
            secret = secrets[mount["name"]]
            files = secret_files(secret["secretName"])
            mounted[mount["mountPath"]] = files
            if any("PRIVATE KEY" in content for content in files.values()):
                assert secret.get("defaultMode", 0o644) & 0o077 == 0, f"{manifest}: a private key others may read"
    environment = {variable["name"]: variable["value"] for variable in container.get("env", [])}

    loaded = images.load_settings(image, environment, mounted, tmp_path)

    if isinstance(loaded, ServerConfig):  # clients pin the host key and bring their keys: nothing generated
        assert loaded.host_key is not None, f"{manifest}: no BORG_HOST_KEY_FILE: clients could not pin the host key"
        assert all(client.key for client in loaded.clients), f"{manifest}: a client's key would be generated"
        assert loaded.server_host == images.SERVER_NAME
    else:
        assert isinstance(loaded, ClientConfig)
        assert loaded.client == "app"
        assert loaded.repository == f"ssh://borg@{images.SERVER_NAME}:22/./main"
    assert pod.get("enableServiceLinks") is False, f"{manifest}: Services would inject BORG_SERVER_* variables"


def test_the_server_service_is_the_name_clients_pin():
    services = [document for _manifest, document in documents() if document["kind"] == "Service"]
    assert [service["metadata"]["name"] for service in services] == [images.SERVER_NAME]
    assert services[0]["spec"]["ports"] == [{"name": "ssh", "port": 22, "targetPort": "ssh"}]


def test_only_the_server_runs_as_root_and_no_container_may_gain_privileges():
    for manifest, image, container, pod, _claims in appliance_containers():
        context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert context["allowPrivilegeEscalation"] is False, manifest
        assert context["capabilities"]["drop"] == ["ALL"], manifest
        assert "requests" in container["resources"], manifest
        if image == "borg-appliance-client":
            assert context["runAsNonRoot"] is True and context["runAsUser"] == 65534, manifest


def test_the_readme_names_the_kubernetes_version_validated_against():
    assert f"Kubernetes {KUBERNETES_VERSION.rsplit('.', 1)[0]}" in Path(images.README).read_text()
