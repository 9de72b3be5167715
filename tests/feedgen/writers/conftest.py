"""Fixtures for the writer tests: every registered format, and its platform's sample frame."""

from __future__ import annotations

import pandas as pd
import pytest
from writer_samples import platform_frame

from feedgen.writers import FORMATS, platform_of


@pytest.fixture(params=list(FORMATS))
def fmt(request: pytest.FixtureRequest) -> str:
    """Each registered feed format in turn."""
    return str(request.param)


@pytest.fixture
def frame(fmt: str) -> pd.DataFrame:
    """The sample frame for the platform of the current format."""
    return platform_frame(platform_of(fmt))
