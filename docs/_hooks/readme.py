"""MkDocs hook: the repository's README.md becomes the site's page readme.md.

The README is the entry point on a code host, and its snippets are kept true by a test;
the docs link to its sections instead of copying them, so the site must carry it. Its
links are written from the repository root: `docs/<page>` becomes `<page>`, and a link to
a file outside docs/ (bench/README.md) becomes its plain text, since the site has no
such page.
"""

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

RELATIVE_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?!https?:|mailto:|#)(?P<target>[^)\s]+)\)")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    readme = Path(config.config_file_path).parent / "README.md"
    files.append(File.generated(config, "readme.md", content=site_links(readme.read_text())))
    return files


def site_links(markdown: str) -> str:
    """The README's repository-relative links, as links between the site's pages."""

    def relink(link: re.Match[str]) -> str:
        target = link["target"]
        if target.startswith("docs/"):
            return f"[{link['text']}]({target.removeprefix('docs/')})"
        return link["text"]

    return RELATIVE_LINK.sub(relink, markdown)
