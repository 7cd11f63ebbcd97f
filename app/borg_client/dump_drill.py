"""The databases step of a restore drill: each dump of an archive restored into a throw-away database container.

A placeholder with the final interface: the branch that builds the database drill replaces this module
(until then a drill restores no dump and says so).
"""

from __future__ import annotations

from dataclasses import dataclass

from borg_client.borgcall import Control
from borg_client.config import ClientConfig


@dataclass(frozen=True)
class DumpDrill:
    dump: str  # the dump's path in the archive
    image: str  # the database image it was restored into
    ok: bool
    message: str  # one sentence for a person: what was restored, tables/rows, or why it failed
    seconds: float  # how long the restore took


def drill_dumps(config: ClientConfig, archive: str, control: Control) -> list[DumpDrill]:
    """Restore every dump in archive into a throw-away container of its database's image; return one result per dump.

    This placeholder returns none: the database drill's branch replaces this module with the real one.
    """
    return []
