"""No secret is committed: private keys, Fernet keys and passwords in URLs stay out of git.

Scans every file git tracks, and the new ones it would add (untracked, not ignored), so a
key pasted into a file fails here before it is committed. Keys the tests need are
generated when they run; a fixture that must hold a fake one goes in `ALLOWED` with why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gonghui_shared import keys

REPO = Path(__file__).resolve().parents[2]
LARGEST_SCANNED = 5 * 1024 * 1024

# A PEM private key block with a key in it; a template's block holding instructions is fine.
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\\n\s\"']*[A-Za-z0-9+/]{40}")
# A Fernet key (32 bytes, url-safe base64: 43 characters and "=") assigned to a *_KEY or
# *_KEYS name, in env files, YAML, TOML, shell or Python: `GONGHUI_PII_KEYS=…`, `pii_key: "…"`.
FERNET_ASSIGNED = re.compile(
    r"(?i)\b\w*_keys?\b[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z0-9_-]{43}=\s*,\s*)*[A-Za-z0-9_-]{43}="
)
PASSWORD_IN_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@")
# Stand-ins in documentation and templates, not passwords.
PLACEHOLDERS = {
    "password",
    "pass",
    "secret",
    "changeme",
    "change-me",
    "example",
    "…",
    "...",
    "xxx",
    "***",
}
PLACEHOLDER_STARTS = ("$", "<", "{", "%(", "*")

# path -> why a finding there is not a secret. Empty: no file needs an exception today.
ALLOWED: dict[str, str] = {}


def findings(text: str) -> list[str]:
    """What in `text` looks like a committed secret (the kind and the line, never the value)."""
    found = [
        f"line {text.count(chr(10), 0, match.start()) + 1}: a PEM private key"
        for match in PRIVATE_KEY.finditer(text)
    ]
    for number, line in enumerate(text.splitlines(), start=1):
        if FERNET_ASSIGNED.search(line):
            found.append(f"line {number}: a Fernet key assigned to a *_KEY name")
        for match in PASSWORD_IN_URL.finditer(line):
            password = match.group(1)
            if password.lower() not in PLACEHOLDERS and not password.startswith(PLACEHOLDER_STARTS):
                found.append(f"line {number}: a password in a URL")
    return found


def repository_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [REPO / name for name in listed.split("\0") if name]


def test_no_private_key_fernet_key_or_url_password_in_the_repository() -> None:
    files = repository_files()
    assert len(files) > 100, "git listed suspiciously few files"
    problems = []
    for path in files:
        relative = path.relative_to(REPO).as_posix()
        if relative in ALLOWED or not path.is_file() or path.stat().st_size > LARGEST_SCANNED:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary: images, spreadsheets
        problems += [f"{relative} {f}" for f in findings(data.decode(errors="replace"))]
    assert problems == [], "secrets in the repository:\n" + "\n".join(problems)


def test_the_scan_finds_what_it_looks_for() -> None:
    """Each detector, on values made now (so that this file holds none)."""
    pem = keys.new_ed25519_pem().decode()
    fernet, other = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert findings(pem) == ["line 1: a PEM private key"]
    assert findings(keys.public_pem(keys.load_private_key(pem))) == []
    for line in (
        f"GONGHUI_PII_KEYS={fernet}",
        f"export GONGHUI_PII_KEYS='{fernet},{other}'",
        f'    pii_keys: "{fernet}"',
        f'MEMBERSHIP_QR_KEY = "{fernet}"',
    ):
        assert findings(line) == ["line 1: a Fernet key assigned to a *_KEY name"], line
    assert findings(f"token = '{fernet}'") == []  # not named as a key
    escaped = pem.replace("\n", "\\n")  # as in a JSON or .env value on one line
    assert findings(f'GONGHUI_JWT_PRIVATE_KEY="{escaped}"') == ["line 1: a PEM private key"]
    template = "-----BEGIN PRIVATE KEY-----\nCHANGE-ME: openssl genpkey -algorithm ed25519\n"
    assert findings(template + "-----END PRIVATE KEY-----") == []
    url = "postgresql+asyncpg://gonghui:" + "s3cr3t-pass@db:5432/gonghui"
    assert findings(url) == ["line 1: a password in a URL"]
    for fine in (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        "postgresql://gonghui:password@db/gonghui",
        "postgresql+asyncpg://gateway:CHANGE-ME@CHANGE-ME:5432/gateway",
        "postgresql://gonghui:${POSTGRES_PASSWORD}@db/gonghui",
        "nats://127.0.0.1:4222",
        "https://example.org/a:b",
    ):
        assert findings(fine) == [], fine
