"""Helpers shared by the tests (no tests here)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The project's root folder."""
