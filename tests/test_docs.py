"""The docs site builds with `mkdocs build --strict`, as `make docs` does, and holds what it should.

--strict turns every warning into a failure: a nav entry without its file, a relative
link or a heading anchor that does not resolve, a docstring that mkdocstrings cannot
render. The site must also work offline, so no page may load a script or a stylesheet
from another host.
"""

import html
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from mkdocs.utils.yaml import yaml_load

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}{build.stderr}"
    return site_dir


def nav_pages(nav: list) -> list[str]:
    """Every Markdown file the nav names, however deeply nested."""
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def text_of(page: Path) -> str:
    """The page's text, tags removed and whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page.read_text())).split())


class Assets(HTMLParser):
    """The URLs of a page's <script src> and <link href>: what a browser loads with it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def test_every_page_in_the_nav_is_rendered(site):
    config = yaml_load((ROOT / "mkdocs.yml").read_text())  # MkDocs' own loader: !ENV, !!python
    pages = nav_pages(config["nav"])
    assert "operations.md" in pages and "reference/smsrouter.md" in pages
    missing = [page for page in pages if not (site / page).with_suffix(".html").is_file()]
    assert missing == []


def test_the_api_reference_shows_incomings_signature(site):
    """Whether or not a formatter wrapped it (ruff does, when it is installed)."""
    text = text_of(site / "reference" / "smsrouter.html")
    assert "incoming(backend_name: str, identity: str, text: str, *," in text.replace("( ", "(")
    assert "Accept one SMS from identity on backend_name: store it, then route it." in text


def test_attributes_documented_by_comments_are_rendered(site):
    """`#:` comments are our attribute docstrings (griffe-sphinx reads them)."""
    assert "Messages were stored or changed status" in text_of(site / "reference" / "signals.html")


def test_the_readme_is_a_page_and_its_links_point_into_the_site(site):
    readme = (site / "readme.html").read_text()
    assert 'id="adding-smsrouter-to-your-django-project"' in readme
    assert 'href="docs/' not in readme
    assert 'href="security.html"' in readme


def test_the_flow_diagram_is_a_local_svg(site):
    assert 'src="flow.svg"' in (site / "flow.html").read_text()
    assert (site / "flow.svg").read_text().lstrip().startswith("<svg")


def test_no_page_loads_anything_from_another_host(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    remote = {}
    for page in pages:
        parser = Assets()
        parser.feed(page.read_text())
        if found := [url for url in parser.urls if re.match(r"(https?:)?//", url)]:
            remote[str(page.relative_to(site))] = found
    assert remote == {}
    # Material fetches Mermaid from a CDN for any diagram drawn with it.
    assert [page.name for page in pages if 'class="mermaid"' in page.read_text()] == []
