"""The support desk web app (`eob web`): server-rendered pages over pipeline.desk."""
