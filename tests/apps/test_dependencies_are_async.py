"""Every request dependency of every service is `async def`.

FastAPI runs a plain `def` dependency (and a class used as one) in its thread pool: a
hop per request that the profiles showed costing more than the work of a cheap
dependency, and a queue behind 40 threads under load. A dependency that truly blocks
belongs in `run_in_threadpool` inside an async one, where the choice is visible.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

SERVICES = ("membership", "training", "stations", "gateway")


def _is_async(call: Any) -> bool:
    if inspect.isclass(call):
        return False
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    method = getattr(call, "__call__", None)  # noqa: B004 - instances such as HTTPBearer()
    return inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)


def _sync_dependencies(dependant: Any, found: set[str]) -> set[str]:
    for sub in dependant.dependencies:
        if not _is_async(sub.call):
            found.add(f"{sub.call.__module__}.{getattr(sub.call, '__qualname__', sub.call)}")
        _sync_dependencies(sub, found)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_no_dependency_runs_in_the_thread_pool(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GONGHUI_DATA_DIR", str(tmp_path))
    app = importlib.import_module(f"{service}.main").create_app()
    routes = [r for r in iter_route_contexts(app.routes) if hasattr(r, "dependant")]
    assert routes, "no routes found: the walk itself is broken"
    found: set[str] = set()
    for route in routes:
        _sync_dependencies(route.dependant, found)
    assert not found, f"plain-def dependencies (make them async def): {sorted(found)}"
