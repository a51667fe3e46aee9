"""Opening a stage's context stays cheap: the numba kernels load only where ingest or compose
work, though `pipeline.storage` and `pipeline.ingest` name them in their public surface."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys; {code}; print(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_the_stages_and_the_object_store_load_without_the_kernels() -> None:
    assert "numba" not in _loaded_after("import pipeline.stages, pipeline.storage as s; s.open_store")


def test_a_canonical_reader_brings_its_kernels_when_first_used() -> None:
    assert "numba" in _loaded_after("import pipeline.storage as s; s.iter_buckets")


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    import pipeline.ingest

    with pytest.raises(AttributeError, match="'pipeline.ingest' has no attribute 'ingestt'"):
        pipeline.ingest.ingestt  # noqa: B018
