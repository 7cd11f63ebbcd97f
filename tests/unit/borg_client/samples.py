"""Sample values the sidecar's tests share: the paired repository URL, borg create's --json output."""

import json

REPO_URL = "ssh://borg@srv:22/./main"
REPO_ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def create_json(name: str, repository_id: str = REPO_ID, end: str = "2024-05-06T03:00:42.000000") -> str:
    """Return borg create --json output naming the repository and the archive written."""
    repository = {"id": repository_id, "location": "ssh://borg@srv:22/./main", "last_modified": end}
    return json.dumps({"repository": repository, "archive": {"name": name, "start": end, "end": end, "stats": {}}})
