"""The dashboard page is served with its security headers, and carries no inline code."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from gateway.web.endpoints import STATIC_DIR

PAGE_FILES = [
    "/dashboard/",
    "/dashboard/index.html",
    "/dashboard/app.css",
    "/dashboard/favicon.svg",
    "/dashboard/js/main.js",
    "/dashboard/js/api.js",
    "/dashboard/js/charts.js",
    "/dashboard/js/map.js",
    "/dashboard/js/i18n.js",
    "/dashboard/js/format.js",
]


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: [sources]}."""
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.mark.parametrize("path", PAGE_FILES)
async def test_every_file_of_the_page_has_the_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    # no inline script, no eval, nothing from another origin
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/dashboard/", "text/html"),
        ("/dashboard/app.css", "text/css"),
        ("/dashboard/favicon.svg", "image/svg+xml"),
        # ES modules are refused under nosniff unless served with a JavaScript type
        ("/dashboard/js/main.js", "text/javascript"),
    ],
)
async def test_files_are_served_with_their_media_type(
    client: httpx.AsyncClient, path: str, media_type: str
) -> None:
    response = await client.get(path)
    assert response.headers["content-type"].split(";")[0] == media_type


async def test_the_page_without_its_slash_redirects_to_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard")
    assert response.status_code == 308
    assert response.headers["location"] == "/dashboard/"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path", ["/dashboard/missing.js", "/dashboard/../main.py", "/dashboard/%2e%2e/main.py"]
)
async def test_nothing_outside_the_static_folder_is_served(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "create_app" not in response.text


class _InlineCode(HTMLParser):
    """Collects what the policy would block: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script":
            src = dict(attrs).get("src")
            if src:
                self.scripts.append(src)
            else:
                self._in_inline_script = True
                self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        self.found += [f"{name}= on <{tag}>" for name in names if name.startswith("on")]
        if "style" in names:
            self.found.append(f"style= on <{tag}>")
        for name, value in attrs:
            if name in ("href", "src") and value and re.match(r"\s*(javascript|https?):", value):
                self.found.append(f"{name}={value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False


def test_the_page_has_no_inline_code_and_loads_nothing_from_elsewhere() -> None:
    parser = _InlineCode()
    parser.feed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    assert parser.found == []
    assert parser.scripts == ["js/main.js"]
    for script in STATIC_DIR.rglob("*.js"):
        text = script.read_text(encoding="utf-8")
        # the policy forbids these; keep them out of the code rather than fail at run time
        for forbidden in ("eval(", "new Function", "innerHTML", 'setAttribute("style"'):
            assert forbidden not in text, f"{forbidden} in {script.name}"
        # the only URL is the SVG namespace, a name that is never fetched
        urls = set(re.findall(r"https?://[^\s\"'`]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, f"{urls} in {script.name}"
