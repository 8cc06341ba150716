"""`--profile KEY`: sample the measured service with py-spy while the load runs.

py-spy is not a dependency: install it into the venv (`.venv/bin/pip install py-spy`) to
use this. It samples the service's process from outside (no code change, little overhead
with `--nonblocking`) and writes the collapsed stacks; `summary` turns them into the
functions where the time goes, by their own samples and with what they call.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

SAMPLES_PER_SECOND = 250
# The inclusive table lists our own code only: the framework's frames are on every stack.
OWN_PACKAGES = ("gonghui_shared/", "membership/", "training/", "stations/", "gateway/")
# "function (path/to/module.py:123)" -> "function (module.py)"; lines split one function.
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^():]+)(?::\d+)?\)$")


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


async def record(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process:
    """Start sampling `pid` for `seconds` into `out` (collapsed stacks); returns the process."""
    return await asyncio.create_subprocess_exec(
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(int(seconds), 1)),
        "--rate",
        str(SAMPLES_PER_SECOND),
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def _frame(text: str) -> str:
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip()
    module = match["path"].replace("\\", "/")
    for marker in ("/site-packages/", "/src/", "/lib/python"):
        if marker in module:
            module = module.split(marker, 1)[1]
            break
    return f"{match['function']} ({module})"


def summary(raw: Path, top: int = 25) -> str:
    """The functions with the most samples, by own time and with their callees (Markdown)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples\n"

    def table(counts: Counter[str]) -> list[str]:
        rows = ["| share | samples | function (module) |", "|---:|---:|---|"]
        rows += [f"| {n / total:.1%} | {n:,} | `{name}` |" for name, n in counts.most_common(top)]
        return rows

    ours = Counter(
        {k: n for k, n in inclusive.items() if k.partition("(")[2].startswith(OWN_PACKAGES)}
    )

    lines = [
        # Without --idle py-spy keeps only samples of threads running: this is CPU time.
        f"{total:,} samples on CPU at {SAMPLES_PER_SECOND}/s "
        f"(~{total / SAMPLES_PER_SECOND:.1f} CPU seconds)",
        "",
        "### Own time",
        "",
        *table(own),
        "",
        "### Our functions, including what they call",
        "",
        *table(ours),
        "",
    ]
    return "\n".join(lines)
