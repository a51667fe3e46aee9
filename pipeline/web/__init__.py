"""The support desk web app (`eob web`): server-rendered pages over pipeline.desk.

`create_app` loads on first use, so importing a submodule (`pipeline.web.sessions` from
`eob users`) neither pulls in FastAPI and every route nor runs into `app` importing back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from pipeline.web.app import create_app

__all__ = ["create_app"]
__getattr__ = lazy_exports(__name__, {"pipeline.web.app": ("create_app",)})
