# Borg Appliance: `make up` runs the appliance, `make test` runs every test. Both install what they
# need by themselves (the packages that make the base image, a virtualenv for the tests).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The base image: Debian 13 from Debian's archive. Where a registry is reachable it is the stock
# debian:trixie-slim, re-tagged; where none is (our machines), mmdebstrap builds it from packages.
BASE_IMAGE := borg-appliance-base:trixie
DEBIAN_MIRROR ?= http://deb.debian.org/debian
DEBIAN_SECURITY ?= http://deb.debian.org/debian-security
# IMAGE_TAG: another tag lets a second work tree build and test beside this one.
IMAGE_TAG ?= latest
SERVER_IMAGE := borg-appliance-server:$(IMAGE_TAG)
CLIENT_IMAGE := borg-appliance-client:$(IMAGE_TAG)
VENV := .venv
PYTHON ?= python3
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# The classic builder works everywhere; BuildKit is used where buildx is installed.
BUILD := docker build --build-arg BASE_IMAGE=$(BASE_IMAGE)
# PROFILES=admin: also the admin service, which prunes with the client's admin key (compose profile).
PROFILES ?=
comma := ,
COMPOSE_PROFILES := $(PROFILES)
ADMIN := $(filter admin,$(subst $(comma), ,$(PROFILES)))
export BASE_IMAGE IMAGE_TAG COMPOSE_PROFILES

.PHONY: help up down test unit integration lint docs images test-images browser-image base-image venv bench promtool all-images

help:
	@echo "make up     run the appliance (server, sidecar, sample app) and make a first backup"
	@echo "make up PROFILES=admin   also the admin service that prunes (docs/how-to/prune-safely.md#where-the-admin-key-lives)"
	@echo "make down   stop it (volumes are kept; 'make down VOLUMES=1' removes them too)"
	@echo "make test   unit and integration tests (builds the images)"
	@echo "make lint   ruff check, format check and the strict docs build"
	@echo "make docs   build the documentation site into site/ (mkdocs, strict)"
	@echo "make bench  the appliance against plain borg and restic (BENCH_ARGS=\"--size-mb 256\" for a quick run)"

base-image:
	@if docker image inspect $(BASE_IMAGE) >/dev/null 2>&1; then \
	    echo "base image $(BASE_IMAGE): present"; \
	elif docker pull debian:trixie-slim >/dev/null 2>&1; then \
	    docker tag debian:trixie-slim $(BASE_IMAGE) && echo "base image $(BASE_IMAGE): debian:trixie-slim"; \
	else \
	    echo "base image $(BASE_IMAGE): no registry, building Debian 13 from $(DEBIAN_MIRROR) with mmdebstrap"; \
	    command -v mmdebstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap; }; \
	    mkdir -p .build && mmdebstrap --variant=minbase --format=tar --quiet \
	        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	        --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
	        --customize-hook='rm -rf "$$1"/var/lib/apt/lists/* "$$1"/var/cache/apt/*.bin' \
	        trixie .build/trixie.tar \
	        "deb $(DEBIAN_MIRROR) trixie main" "deb $(DEBIAN_MIRROR) trixie-updates main" \
	        "deb $(DEBIAN_SECURITY) trixie-security main" \
	    && docker import --change 'CMD ["bash"]' .build/trixie.tar $(BASE_IMAGE) >/dev/null \
	    && rm -f .build/trixie.tar && echo "base image $(BASE_IMAGE): built"; \
	fi

images: base-image
	$(BUILD) -f Dockerfile.server -t $(SERVER_IMAGE) .
	$(BUILD) -f Dockerfile.client -t $(CLIENT_IMAGE) .

# The test-only images (tests/images), from Debian's packages too: the databases of the dump scenarios
# (PostgreSQL 17, MariaDB), the receivers of the notification scenarios (ntfy, an SMTP server) and the headless
# Chromium of the status page scenario. One target each, so `make -j` builds them side by side.
TEST_IMAGES := postgres mariadb ntfy smtp chromium
test-images: $(addprefix test-image-,$(TEST_IMAGES))
$(addprefix test-image-,$(TEST_IMAGES)): test-image-%: base-image
	$(BUILD) -q -t borg-appliance-test-$*:$(IMAGE_TAG) tests/images/$* >/dev/null
browser-image: test-image-chromium
.PHONY: $(addprefix test-image-,$(TEST_IMAGES))

# Every image the scenarios use, side by side (their downloads from Debian's archive overlap), and once: before
# the scenarios start, not by each test worker on its own.
all-images: images test-images

secrets/borg_passphrase:
	@mkdir -p secrets && chmod 700 secrets
	@umask 077 && head -c 33 /dev/urandom | base64 > $@
	@echo "created $@: the repository passphrase (keep a copy somewhere safe; it is git-ignored)"

up: images secrets/borg_passphrase
	$(if $(ADMIN),APP_ADMIN_KEY=generate) $(COMPOSE) up -d
	@deadline=$$((SECONDS + 180)); for service in borg-server backup-app; do \
	    id=$$($(COMPOSE) ps -q $$service); \
	    until [ "$$(docker inspect -f '{{.State.Health.Status}}' $$id)" = healthy ]; do \
	        [ $$SECONDS -lt $$deadline ] || { echo "$$service is not healthy:"; $(COMPOSE) logs --tail 30 $$service; exit 1; }; \
	        sleep 2; \
	    done; echo "$$service: healthy"; \
	done
	$(COMPOSE) exec -T backup-app borg-client run
	$(COMPOSE) exec -T backup-app borg-client list
	@echo
	@echo "Backed up. Next:"
	@echo "  $(COMPOSE) exec backup-app borg-client list                      # archives"
	@echo "  $(COMPOSE) exec backup-app borg-client list ARCHIVE               # files in one"
	@echo "  $(COMPOSE) exec backup-app borg-client restore ARCHIVE --target /tmp/restore"
	@echo "  $(COMPOSE) exec borg-server borg-server status"
	$(if $(ADMIN),@echo "  $(COMPOSE) exec backup-admin borg-client prune                 # prune now (PRUNE_CRON: daily)")

down:
	COMPOSE_PROFILES=admin $(COMPOSE) down $(if $(VOLUMES),--volumes)

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir .build/site

# The documentation site (mkdocs.yml): strict, so a broken link or anchor fails the build.
docs: venv
	$(VENV)/bin/mkdocs build --strict --site-dir site

# promtool checks and tests deploy/monitoring's alert rules in the unit tests: taken out of Debian's prometheus
# package into .build/bin when no promtool is on PATH (the package is not installed: no Prometheus service starts).
promtool:
	@command -v promtool >/dev/null || test -x .build/bin/promtool || { \
	  rm -rf .build/promtool && mkdir -p .build/promtool .build/bin && cd .build/promtool && \
	  { apt-get download prometheus 2>/dev/null || { apt-get update -q && apt-get download prometheus; }; } && \
	  dpkg-deb -x prometheus_*.deb root && cp root/usr/bin/promtool ../bin/promtool && cd .. && rm -rf promtool; }

unit: venv promtool
	$(VENV)/bin/pytest -q tests/unit

# Scenarios spend most of their time waiting for containers, so WORKERS runs more of them at once than the
# machine has cores; a module's scenarios that share a module-scoped world stay on one worker, those marked
# `cores` never run beside each other (tests/integration/conftest.py), and those marked `alone` (they change
# the Docker daemon: swarm mode) run afterwards, with nothing beside them.
WORKERS ?= 4
PARALLEL = -n $(WORKERS) --dist loadgroup -m "not alone"

integration: venv
	$(MAKE) --no-print-directory -j4 all-images
	$(VENV)/bin/pytest -q $(PARALLEL) tests/integration
	$(VENV)/bin/pytest -q -m alone tests/integration

test: venv promtool
	$(MAKE) --no-print-directory -j4 all-images
	$(VENV)/bin/pytest -q tests/unit
	$(VENV)/bin/pytest -q $(PARALLEL) --durations=40 tests/integration
	$(VENV)/bin/pytest -q -m alone tests/integration

# Benchmarks print ratios against plain borg measured in the same run (bench/results.md).
BENCH_ARGS ?=
bench: venv images
	$(VENV)/bin/python -m bench $(BENCH_ARGS)
