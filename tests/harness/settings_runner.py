"""Run inside an image: feed each case of a JSON table to a command; print one JSON line per case.

argv: the table (JSON file), the directories to digest, "--", the command. The first line is the digest
of the directories before any case; each case runs with the container's environment plus its value and
the settings it sets (minus those it unsets), with a timeout, and its line carries its exit code, the end
of its stderr, how long it took and the digest of the directories after it, so a test can tell exactly
which case changed something. Started by tests/harness/tables.py.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def digest(directories: list[str]) -> str:
    """Given directories, return a sha256 over every file's path, mode, owner and content under them."""
    total = hashlib.sha256()
    for directory in directories:
        for path in sorted(Path(directory).rglob("*")):
            info = path.lstat()
            total.update(f"{path} {info.st_mode} {info.st_uid}:{info.st_gid}\n".encode())
            if path.is_file() and not path.is_symlink():
                total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


def main() -> None:
    separator = sys.argv.index("--")
    table, directories, command = sys.argv[1], sys.argv[2:separator], sys.argv[separator + 1 :]
    print(json.dumps({"digest": digest(directories)}), flush=True)
    for case in json.loads(Path(table).read_text()):
        environ = {k: v for k, v in os.environ.items() if k not in case.get("unset", [])} | case.get("set", {})
        if "setting" in case:
            environ |= {case["setting"]: case["value"]}
        started = time.monotonic()
        try:
            result = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=20, check=False)
            outcome = {"rc": result.returncode, "stderr": result.stderr[-2000:], "length": len(result.stderr)}
        except subprocess.TimeoutExpired:
            outcome = {"rc": "timeout", "stderr": "", "length": 0}
        outcome |= {"seconds": time.monotonic() - started, "digest": digest(directories)}
        print(json.dumps({"id": case["id"], **outcome}), flush=True)


main()
