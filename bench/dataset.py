"""A deterministic data set: incompressible files, compressible text and many small files."""

from __future__ import annotations

import dataclasses
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

WORDS = (
    "backup archive repository chunk segment borg client server key passphrase volume container schedule "
    "report restore mount prune compact append only deduplicated encrypted compressed transaction lock "
    "the of and to in is that for it as was with be by on not he this are or his from at which but"
).split()


@dataclass(frozen=True)
class DataSet:
    """Where the data set is and what is in it."""

    path: Path
    bytes: int
    files: int


def make(path: Path, size: int, seed: int = 2026) -> DataSet:
    """Given a directory and a total size in bytes, write the data set there (again only if missing).

    45% incompressible (random bytes, 8 MB files), 45% text (words, 4 MB files), 10% small files of
    2–16 kB. The same size and seed always give the same bytes.
    """
    marker = path / f".complete-{size}-{seed}"
    if marker.exists():
        return describe(path)
    rng = random.Random(seed)
    for kind in ("random", "text", "small"):
        (path / kind).mkdir(parents=True, exist_ok=True)
    write_files(path / "random", int(size * 0.45), 8_000_000, rng.randbytes)
    write_files(path / "text", int(size * 0.45), 4_000_000, lambda n: text(rng, n))
    small, number = int(size * 0.10), 0
    while small > 0:
        length = min(small, rng.randint(2_000, 16_000))
        (path / "small" / f"{number // 1000:03d}").mkdir(exist_ok=True)
        (path / "small" / f"{number // 1000:03d}" / f"f{number:06d}.txt").write_bytes(text(rng, length))
        small, number = small - length, number + 1
    marker.touch()
    return describe(path)


def write_files(directory: Path, total: int, file_size: int, content) -> None:
    number = 0
    while total > 0:
        length = min(total, file_size)
        (directory / f"f{number:04d}.bin").write_bytes(content(length))
        total, number = total - length, number + 1


def text(rng: random.Random, length: int) -> bytes:
    """Return length bytes of seeded word salad: compressible like logs or documents."""
    words = rng.choices(WORDS, k=length // 5 + 1)
    return " ".join(words).encode()[:length]


def describe(path: Path) -> DataSet:
    files = [entry for entry in path.rglob("*") if entry.is_file() and not entry.name.startswith(".")]
    return DataSet(path, sum(entry.stat().st_size for entry in files), len(files))


def make_many(path: Path, count: int, size: int, seed: int = 2027) -> DataSet:
    """Given a directory, a number of files and their size in bytes, write that many small text files there
    (1000 to a directory), again only if missing. The same arguments always give the same bytes."""
    marker = path / f".complete-{count}-{size}-{seed}"
    if marker.exists():
        return DataSet(path, count * size, count)
    rng = random.Random(seed)
    block = text(rng, size * 64 + 4096)  # file n is a window of this seeded text, so files differ cheaply
    for number in range(count):
        directory = path / f"d{number // 1000:04d}"
        if number % 1000 == 0:
            directory.mkdir(parents=True, exist_ok=True)
        start = (number * 7919) % (len(block) - size)
        (directory / f"f{number:06d}.txt").write_bytes(f"{number:08d}".encode() + block[start : start + size - 8])
    marker.touch()
    return DataSet(path, count * size, count)


MEMORY = Path("/dev/shm/borg-appliance-bench")


def in_memory(data: DataSet) -> DataSet:
    """Given a data set, return its copy in memory (a tmpfs), where every mode reads it at the same speed.

    On the disk, reading 200,000 small files depended on what of them the page cache still held, and a
    virtual machine's host may take that memory back (seen here: 0.6 of 24 GB cached), so the same
    step took 40 s in one run and 67 s in the next. remove_memory_copies() removes the copies.
    """
    copy = MEMORY / data.path.name
    if not copy.exists():
        partial = MEMORY / f"{data.path.name}.partial"
        shutil.copytree(data.path, partial, dirs_exist_ok=True)
        partial.rename(copy)
    return dataclasses.replace(data, path=copy)


def remove_memory_copies() -> None:
    shutil.rmtree(MEMORY, ignore_errors=True)
