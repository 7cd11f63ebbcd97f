"""Run inside an image: feed each case of a JSON table to a command; print one JSON line per case, then digests.

argv: the table (JSON file), the directories to digest, "--", the command. Each case runs with the
container's environment plus its value and the settings it sets (minus those it unsets), with a timeout.
"""

import hashlib
import json
import os
import subprocess
import sys
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
        environ = {k: v for k, v in os.environ.items() if k not in case["unset"]} | case.get("set", {})
        environ |= {case["setting"]: case["value"]}
        try:
            result = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=20, check=False)
            outcome = {"rc": result.returncode, "stderr": result.stderr[-2000:], "length": len(result.stderr)}
        except subprocess.TimeoutExpired:
            outcome = {"rc": "timeout", "stderr": "", "length": 0}
        print(json.dumps({"id": case["id"], **outcome}), flush=True)
    print(json.dumps({"digest": digest(directories)}), flush=True)


main()
