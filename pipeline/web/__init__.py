"""The support desk web app (`eob web`): server-rendered pages over pipeline.desk."""

from pipeline.web.app import create_app

__all__ = ["create_app"]
