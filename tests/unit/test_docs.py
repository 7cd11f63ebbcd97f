"""The documentation can be found from where people and code point at it.

README.md links into docs/; code, compose.yaml, deploy/, the Makefile and the Dockerfiles point at
docs/ in messages and comments. Every such reference has one form:

    docs/<path>.md              a page
    docs/<path>.md#<anchor>     a heading in it: its MkDocs anchor (lower case, spaces to '-',
                                punctuation dropped: "## Where the admin key lives" is
                                #where-the-admin-key-lives)

and must name a page and a heading that exist. The README is where people arrive, not a place to
point at: a "README" mention in those files is a stale reference ("see README, Pruning safely") and
fails. Two exceptions: tests/README.md (the tests' own guide) and "README" in quotes, the name of a
file every borg repository holds.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CODE_FOLDERS = ("entrypoint", "app", "common", "deploy")
CODE_FILES = ("compose.yaml", "Makefile")

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
# a mention of docs/ that is not part of a longer path (/usr/share/docs/ is not one)
DOCS_MENTION = re.compile(r"(?<![\w./-])docs/[^\s\"'`()<>,;]*")
REFERENCE = re.compile(r"docs/(?P<page>[a-z0-9_-]+(?:/[a-z0-9_-]+)*\.md)(?:#(?P<anchor>[a-z0-9_-]+))?")
README_MENTION = re.compile(r"readme", re.IGNORECASE)
README_ALLOWED = re.compile(r"tests/README\.md|([\"'])README\1")


def slugify(heading: str) -> str:
    """Given a heading's Markdown text, return the anchor MkDocs gives it (Python-Markdown's toc slugify)."""
    text = MARKDOWN_LINK.sub(r"\1", heading).replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def headings(markdown: str) -> list[str]:
    """Given a page's Markdown, return the text of its headings, outside fenced code blocks."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            found.append(match.group(2))
    return found


def anchors_of(markdown: str) -> set[str]:
    """Given a page's Markdown, return the anchors of its headings; a repeated one gets _1, _2, … as in MkDocs."""
    anchors: set[str] = set()
    for heading in headings(markdown):
        anchor, count = slugify(heading), 1
        unique = anchor
        while unique in anchors:
            unique, count = f"{anchor}_{count}", count + 1
        anchors.add(unique)
    return anchors


@cache
def page_anchors(page: str) -> frozenset[str] | None:
    """Given a path under docs/, return its anchors, or None if there is no such page."""
    path = DOCS / page
    if not path.is_file():
        return None
    return frozenset(anchors_of(path.read_text()))


def target_problem(page: str, anchor: str | None) -> str | None:
    """Given a page under docs/ and an optional anchor, return what is wrong with it, or None."""
    anchors = page_anchors(page)
    if anchors is None:
        return f"docs/{page} does not exist"
    if anchor and anchor not in anchors:
        return f"docs/{page} has no heading with the anchor #{anchor}"
    return None


def reference_problems(line: str) -> list[str]:
    """Given one line of code, compose, deploy or Makefile text, return what is wrong with its doc references."""
    problems = []
    for mention in DOCS_MENTION.findall(line):
        mention = mention.rstrip(".:")
        reference = REFERENCE.fullmatch(mention)
        if reference is None:
            problems.append(f"{mention}: not of the form docs/<path>.md or docs/<path>.md#<anchor>")
            continue
        problem = target_problem(reference["page"], reference["anchor"])
        if problem:
            problems.append(f"{mention}: {problem}")
    if README_MENTION.search(README_ALLOWED.sub("", line)):
        problems.append("mentions the README: point at a page of docs/ instead (docs/<path>.md#<anchor>)")
    return problems


def code_files() -> list[Path]:
    """Return the text files that may point at the documentation: code, compose, deploy, Makefile, Dockerfiles."""
    files = [ROOT / name for name in CODE_FILES] + sorted(ROOT.glob("Dockerfile.*"))
    for folder in CODE_FOLDERS:
        files += sorted(path for path in (ROOT / folder).rglob("*") if path.is_file() and path.suffix != ".pyc")
    return [path for path in files if path.is_file() and b"\0" not in path.read_bytes()]


def test_anchors_are_made_the_way_mkdocs_makes_them():
    assert slugify("Where the admin key lives") == "where-the-admin-key-lives"
    assert slugify("What the server keeps, and how much") == "what-the-server-keeps-and-how-much"
    assert slugify("replica_mismatch (on a replica)") == "replica_mismatch-on-a-replica"
    assert slugify("The pitfall: deletes wait for the first compaction") == (
        "the-pitfall-deletes-wait-for-the-first-compaction"
    )
    assert slugify("`borg-client prune` and [its rules](x.md)") == "borg-client-prune-and-its-rules"
    assert anchors_of("# Title\n## Steps\n```sh\n# not a heading\n```\n## Steps\n") == {"title", "steps", "steps_1"}


def test_the_checker_names_a_missing_page_a_missing_anchor_a_malformed_reference_and_a_readme_mention():
    assert reference_problems("see docs/how-to/no-such-page.md") == [
        "docs/how-to/no-such-page.md: docs/how-to/no-such-page.md does not exist"
    ]
    assert reference_problems("(docs/how-to/prune-safely.md#no-such-heading).") == [
        "docs/how-to/prune-safely.md#no-such-heading: docs/how-to/prune-safely.md has no heading with the anchor "
        "#no-such-heading"
    ]
    assert reference_problems("see docs/how-to/, Pruning") == [
        "docs/how-to/: not of the form docs/<path>.md or docs/<path>.md#<anchor>"
    ]
    assert reference_problems('restore them as the README\'s rollback procedure says (README: "Monitor")') == [
        "mentions the README: point at a page of docs/ instead (docs/<path>.md#<anchor>)"
    ]
    assert reference_problems('for name in ("config", "README", "hints.5"): how to run one: tests/README.md') == []
    assert reference_problems("(docs/how-to/prune-safely.md#where-the-admin-key-lives)") == []
    assert reference_problems("--dpkgopt='path-exclude=/usr/share/docs/*'") == []


def test_every_link_of_the_readme_points_at_a_file_and_heading_that_exist():
    problems = []
    for text, target in MARKDOWN_LINK.findall(README.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or a heading of the README itself
        path, _, anchor = target.partition("#")
        if path.startswith("docs/") and path.endswith(".md"):  # a page; an image only has to exist
            problem = target_problem(path.removeprefix("docs/"), anchor or None)
        else:
            problem = None if (ROOT / path).exists() else f"{path} does not exist"
        if problem:
            problems.append(f"README.md: [{text}]({target}): {problem}")
    assert problems == []


def test_every_page_of_docs_is_on_a_map_the_readme_or_docs_index():
    readme_links = MARKDOWN_LINK.findall(README.read_text())
    index_links = MARKDOWN_LINK.findall((DOCS / "index.md").read_text())
    linked = {target.partition("#")[0].removeprefix("docs/") for _text, target in readme_links}
    linked |= {target.partition("#")[0] for _text, target in index_links}
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert "index.md" in linked
    assert sorted(pages - linked - {"index.md"}) == []


def test_every_reference_to_the_docs_in_code_compose_deploy_makefile_and_dockerfiles_exists():
    problems = []
    for path in code_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            where = f"{path.relative_to(ROOT)}:{number}"
            problems += [f"{where}: {problem}: {line.strip()[:120]}" for problem in reference_problems(line)]
    assert problems == [], "\n".join(problems)
