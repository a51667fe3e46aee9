"""The embedded demo and the test bed: loopback SMTP relays that behave like the Internet (and
write real DSNs), synthetic claim extracts, and the in-process Airflow runner.

Its third-party needs (aiosmtpd, trustme) are the `demo` extra: a production worker installs the
project without it, and import-linter keeps every production room from importing this package.
"""
