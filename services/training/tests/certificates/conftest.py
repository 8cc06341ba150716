"""Fixtures of the certificate tests."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from training.testing import Api, Classroom


@pytest.fixture
def classroom(api: Api, app: FastAPI) -> Classroom:
    """Sessions built over the API and run to their last day."""
    return Classroom(api, app)
