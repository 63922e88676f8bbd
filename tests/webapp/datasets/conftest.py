from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A data directory of the test's own (staged uploads land in ``uploads/``), and a
    spool directory for files Django receives."""
    settings.DATA_DIR = tmp_path / "data"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    return settings.DATA_DIR
