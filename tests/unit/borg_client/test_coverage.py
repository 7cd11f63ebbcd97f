"""Tests for the coverage classification: containers and volumes as the Docker API lists them, each mount's exact
state and why."""

from borg_client.coverage import Item, classify, counts, database_kind, findings

OWN = "a" * 64
OTHER = "b" * 64
IMAGE = "sha256:client"
PROJECT = {"com.docker.compose.project": "shop"}


def volume(name: str, destination: str) -> dict:
    return {"Type": "volume", "Name": name, "Source": f"/var/lib/docker/volumes/{name}/_data",
            "Destination": destination, "RW": True}  # fmt: skip


def bind(source: str, destination: str) -> dict:
    return {"Type": "bind", "Source": source, "Destination": destination, "RW": True}


def container(name: str, *mounts: dict, image: str = "nginx:1.27", labels: dict | None = None,
              state: str = "running", id_: str | None = None, image_id: str = "sha256:other") -> dict:  # fmt: skip
    return {"Id": id_ or name.ljust(64, "0"), "Names": [f"/{name}"], "Image": image, "ImageID": image_id,
            "Labels": {**PROJECT, **(labels or {})}, "State": state, "Mounts": list(mounts)}  # fmt: skip


def sidecar(name: str, *mounts: dict, id_: str = OTHER, state: str = "running") -> dict:
    return container(name, *mounts, image="borg-appliance-client:latest", id_=id_, image_id=IMAGE, state=state)


def shown(items: list[Item]) -> list[tuple]:
    return [(item.container, item.kind, item.mount, item.state, item.why) for item in items]


def test_a_volume_under_backup_of_this_or_another_sidecar_is_covered_and_one_mounted_nowhere_is_not():
    host = [
        sidecar("backup", volume("shop_data", "/backup/data"), volume("state", "/var/lib/borg-client"), id_=OWN),
        sidecar("backup-media", volume("shop_media", "/backup/media")),
        container("app", volume("shop_data", "/srv/data"), volume("shop_media", "/srv/media"),
                  volume("shop_uploads", "/srv/uploads")),
    ]  # fmt: skip

    assert shown(classify(host, {}, OWN)) == [
        ("app", "volume", "shop_data", "covered", "under /backup of sidecar backup"),
        ("app", "volume", "shop_media", "covered", "under /backup of sidecar backup-media"),
        ("app", "volume", "shop_uploads", "not_covered", "no sidecar mounts it under /backup"),
    ]


def test_a_stopped_sidecar_covers_nothing():
    host = [sidecar("old", volume("shop_data", "/backup/data"), state="exited"),
            container("app", volume("shop_data", "/srv/data"))]  # fmt: skip

    assert shown(classify(host, {}, OWN))[0][3] == "not_covered"


def test_a_bind_mount_is_covered_when_a_sidecar_mounts_its_host_path_or_a_parent_of_it():
    host = [
        sidecar("backup", bind("/srv/sites", "/backup/sites"), id_=OWN),
        container("web", bind("/srv/sites/blog", "/usr/share/nginx/html"), bind("/srv/sitesold", "/old")),
    ]

    assert shown(classify(host, {}, OWN)) == [
        ("web", "bind", "/srv/sitesold", "not_covered", "no sidecar mounts it under /backup"),
        ("web", "bind", "/srv/sites/blog", "covered", "under /backup of sidecar backup"),
    ]


def test_a_database_copied_while_it_runs_is_unsafe_dumped_or_stopped_is_covered_and_mounted_nowhere_is_not():
    host = [
        sidecar("backup", volume("pg1", "/backup/pg1"), volume("pg2", "/backup/pg2"), volume("my", "/backup/my"),
                id_=OWN),
        container("pg-copied", volume("pg1", "/var/lib/postgresql/data"), image="postgres:17"),
        container("pg-dumped", volume("pg2", "/var/lib/postgresql/data"), image="postgres:17",
                  labels={"borg-appliance.dump": "postgres"}),
        container("mariadb-stopped", volume("my", "/var/lib/mysql"), image="mariadb:11",
                  labels={"backup.stop": "yes"}),
        container("mongo", volume("mongo", "/data/db"), image="mongo:7"),
        container("redis", image="redis:7"),
    ]  # fmt: skip

    items = classify(host, {}, OWN, stop_labels={OWN: "backup.stop"})

    assert shown(items) == [
        ("mariadb-stopped", "volume", "my", "covered", "under /backup of sidecar backup, copied while stopped "
         "(label backup.stop)"),
        ("mongo", "volume", "mongo", "not_covered", "MongoDB data neither dumped (borg-appliance.dump) nor under "
         "/backup of any sidecar"),
        ("pg-copied", "volume", "pg1", "unsafe", "PostgreSQL data copied by sidecar backup while the database runs: "
         "neither dumped (borg-appliance.dump) nor stopped (BACKUP_STOP_LABEL)"),
        ("pg-dumped", "volume", "pg2", "covered", "PostgreSQL dumped (borg-appliance.dump on the container)"),
        ("redis", "container", "-", "not_covered", "Redis keeps its data in the container itself, not dumped "
         "(borg-appliance.dump)"),
    ]  # fmt: skip
    assert [item.database for item in items] == ["mariadb", "mongodb", "postgres", "postgres", "redis"]
    assert counts(items) == {"covered": 2, "unsafe": 1, "left_out": 0, "not_covered": 2}
    assert [item.container for item in findings(items)] == ["mongo", "pg-copied", "redis"]


def test_another_sidecars_stop_label_counts_too():
    host = [
        sidecar("backup-db", volume("pg", "/backup/pg")),
        container("db", volume("pg", "/var/lib/postgresql/data"), image="postgres:17", labels={"stop": "1"}),
    ]

    assert shown(classify(host, {}, OWN, stop_labels={OTHER: "stop=1"}))[0][3] == "covered"


def test_databases_are_found_by_image_or_by_their_data_path_and_sqlite_files_by_name():
    assert [database_kind(image) for image in ("postgres:17-alpine", "docker.io/library/mariadb:11", "mysql",
            "bitnami/mongodb:7", "valkey/valkey:8", "ghcr.io/acme/shop:1", "timescale/timescaledb-ha:pg16")] == [
        "postgres", "mariadb", "mysql", "mongodb", "redis", None, "postgres"]  # fmt: skip
    host = [container("custom", volume("pgdata", "/var/lib/postgresql/data"), bind("/srv/app.db", "/app/app.db"),
                      image="acme/shop:1")]  # fmt: skip

    items = classify(host, {}, OWN)

    assert [(item.mount, item.database, item.state) for item in items] == [
        ("/srv/app.db", "sqlite", "not_covered"),
        ("pgdata", "postgres", "not_covered"),
    ]


def test_the_skip_label_on_a_container_or_a_volume_and_coverage_ignore_leave_things_out_with_the_reason():
    host = [
        container("cache", volume("cache", "/cache"), labels={"borg-appliance.skip": "rebuilt at start"}),
        container("tmp", volume("tmp", "/tmp"), labels={"borg-appliance.skip": ""}),
        container("app", volume("app_thumbs", "/thumbs"), volume("app_scratch", "/scratch"), bind("/srv/x", "/x")),
        container("traefik", volume("certs", "/certs")),
    ]
    labels = {"app_thumbs": {"borg-appliance.skip": "thumbnails are made again"}}

    items = classify(host, labels, OWN, ignore=["*_scratch", "traefik"])

    assert shown(items) == [
        ("app", "volume", "app_scratch", "left_out", "COVERAGE_IGNORE matches *_scratch"),
        ("app", "volume", "app_thumbs", "left_out", "borg-appliance.skip on the volume: thumbnails are made again"),
        ("app", "bind", "/srv/x", "not_covered", "no sidecar mounts it under /backup"),
        ("cache", "volume", "cache", "left_out", "borg-appliance.skip on the container: rebuilt at start"),
        ("tmp", "volume", "tmp", "left_out", "borg-appliance.skip on the container: no reason given"),
        ("traefik", "volume", "certs", "left_out", "COVERAGE_IGNORE matches traefik"),
    ]


def test_sockets_time_zone_secrets_tmpfs_the_appliance_and_stopped_or_one_off_anonymous_volumes_are_no_items():
    anonymous = "c" * 64
    host = [
        sidecar("backup", volume("state", "/var/lib/borg-client"), bind("/var/run/docker.sock", "/var/run/docker.sock"),
                id_=OWN),
        container("borg-server", volume("repos", "/srv/borg"), image="borg-appliance-server:latest"),
        container("app", bind("/var/run/docker.sock", "/var/run/docker.sock"), bind("/etc/localtime", "/etc/localtime"),
                  bind("/srv/secret", "/run/secrets/token"), {"Type": "tmpfs", "Destination": "/run/cache"},
                  volume(anonymous, "/var/cache")),
        container("job", volume(anonymous, "/scratch"), state="exited"),
        container("run-once", volume(anonymous, "/scratch"), labels={"com.docker.compose.oneoff": "True"}),
    ]  # fmt: skip

    assert shown(classify(host, {}, OWN)) == [  # an anonymous volume of a running service is data
        ("app", "volume", anonymous, "not_covered", "no sidecar mounts it under /backup"),
    ]


def test_the_scope_is_the_host_the_sidecars_own_project_or_a_label():
    host = [
        sidecar("backup", id_=OWN),
        container("shop", volume("shop", "/d")),
        container("blog", volume("blog", "/d"), labels={"com.docker.compose.project": "blog", "tier": "gold"}),
    ]
    host[0]["Labels"] = {"com.docker.compose.project": "shop"}

    def containers(scope: str) -> list[str]:
        return [item.container for item in classify(host, {}, OWN, scope)]

    assert containers("host") == ["blog", "shop"]
    assert containers("project") == ["shop"]
    assert containers("tier=gold") == ["blog"]
    assert containers("tier") == ["blog"]


def test_an_items_key_stays_while_the_finding_does_and_names_it_for_a_person():
    item = Item("app", "volume", "shop_uploads", "/srv/uploads", "not_covered", "no sidecar mounts it under /backup")

    assert item.key == "not_covered|app|volume:shop_uploads"
    assert item.what == "volume shop_uploads"
    assert Item("web", "bind", "/srv/x", "/x", "unsafe", "").what == "bind mount /srv/x"
    assert Item("db", "container", "-", "/data", "not_covered", "").what == "container db"


def test_a_volume_is_said_covered_by_the_sidecar_service_rather_than_a_one_off_run_of_it():
    host = [
        sidecar("shop_backup_run_1", volume("shop_data", "/backup/data"), id_=OWN),
        sidecar("shop_backup_1", volume("shop_data", "/backup/data")),
        container("app", volume("shop_data", "/srv/data")),
    ]
    host[0]["Labels"] = {"com.docker.compose.oneoff": "True"}

    assert shown(classify(host, {}, OWN))[0][4] == "under /backup of sidecar shop_backup_1"


def test_a_sidecar_is_known_by_its_images_title_label_after_its_tag_moved_to_a_newer_build():
    old = sidecar("backup", volume("shop_data", "/backup/data"), volume("state", "/var/lib/borg-client"))
    old |= {"Image": "sha256:0123456789ab", "ImageID": "sha256:0123456789ab",
            "Labels": {"org.opencontainers.image.title": "borg-appliance-client"}}  # fmt: skip
    host = [old, container("app", volume("shop_data", "/srv/data"))]

    assert shown(classify(host, {}, OWN)) == [
        ("app", "volume", "shop_data", "covered", "under /backup of sidecar backup"),
    ]
