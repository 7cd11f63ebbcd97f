"""The steps borg-server's commands share: the server's paths, the configuration loaded or every problem
printed, a client found by name."""

from __future__ import annotations

import os
import socket
import sys
from typing import TYPE_CHECKING

from borg_common.logs import setup_logging
from borg_server.system.paths import Paths

if TYPE_CHECKING:
    from borg_server.records.configuration import ClientSpec, ServerConfig

PATHS = Paths()


def load_or_explain() -> ServerConfig | None:
    """Return the validated configuration, or print every problem and return None."""
    from borg_common.settings import ConfigError
    from borg_server.config import reader as config

    try:
        server_config = config.load(os.environ, socket.gethostname())
    except ConfigError as error:
        print(error.explain("borg-server", "; nothing was changed"), file=sys.stderr)
        return None
    setup_logging(server_config.log_level)  # LOG_LEVEL, validated
    return server_config


def find_client(server_config: ServerConfig, name: str) -> ClientSpec | None:
    """Return the configured client called name, or print which clients exist and return None."""
    client = next((client for client in server_config.clients if client.name == name), None)
    if client is None:
        names = ", ".join(client.name for client in server_config.clients)
        print(f"borg-server: no client {name!r} is configured (configured: {names})", file=sys.stderr)
    return client
