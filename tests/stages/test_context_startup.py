"""What every statement needs is checked when a process starts, not at its first statement
(issue 17: embedded fonts, plan and state rules): a missing font file or broken state rules
refuse `open_context` and fail `eob check`, each naming the file (and the key, or the Debian
package to install)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.render.fonts import FACES, font_path
from pipeline.settings import Settings
from pipeline.stages.context import ConfigurationRefused, open_context
from pipeline.templates import DEFAULT_TEMPLATES_DIR, clear_caches


def _fonts_without_cjk(tmp_path: Path) -> Path:
    """A font directory holding every file of fonts-noto-core, none of fonts-noto-cjk."""
    folder = tmp_path / "fonts"
    folder.mkdir()
    for name, spec in FACES.items():
        if spec.package == "fonts-noto-core" and not (folder / spec.file).exists():
            (folder / spec.file).symlink_to(font_path(name))
    return folder


def _broken_states(tmp_path: Path) -> Path:
    """The shipped templates with California's tagline list naming a language without one."""
    target = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, target)
    states = target / "states.toml"
    text = states.read_text(encoding="utf-8")
    assert '"hmn",' in text
    states.write_text(text.replace('"hmn",', '"xx",', 1), encoding="utf-8")
    return target


def test_a_missing_font_file_refuses_the_context_naming_the_file_and_the_package(
        tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", font_dir=tmp_path / "empty")
    with pytest.raises(ConfigurationRefused) as caught:
        open_context(settings)
    message = str(caught.value)
    assert "NotoSans-Regular.ttf" in message and "fonts-noto-core" in message
    assert "EOB_FONT_DIR" in message

    settings = Settings(workspace=tmp_path / "ws", font_dir=_fonts_without_cjk(tmp_path))
    with pytest.raises(ConfigurationRefused) as caught:
        open_context(settings)
    assert "NotoSansCJK-Regular.ttc" in str(caught.value)
    assert "apt-get install fonts-noto-cjk" in str(caught.value)


def test_broken_state_rules_refuse_the_context_naming_the_file_and_the_key(
        tmp_path: Path) -> None:
    templates = _broken_states(tmp_path)
    try:
        with pytest.raises(ConfigurationRefused) as caught:
            open_context(Settings(workspace=tmp_path / "ws"), templates_dir=templates)
    finally:
        clear_caches()
    message = str(caught.value)
    assert "states.toml" in message and "'states.CA.taglines[12]'" in message
    assert "'xx'" in message


def _eob_check(tmp_path: Path, **env: str) -> list[str]:
    result = CliRunner().invoke(app, ["check"], env={"EOB_WORKSPACE": str(tmp_path / "ws"), **env})
    return [line for line in result.output.splitlines() if "fonts and legal rules" in line]


def test_eob_check_lists_the_missing_font_file_with_its_package(tmp_path: Path) -> None:
    [line] = _eob_check(tmp_path, EOB_FONT_DIR=str(_fonts_without_cjk(tmp_path)))
    assert line.startswith("FAILED")
    assert "NotoSansCJK-Regular.ttc" in line and "fonts-noto-cjk" in line

    [line] = _eob_check(tmp_path)
    assert line.startswith("ok"), line
