"""The EOB statement pipeline, one package per stage of a monthly run (see docs/architecture.md):
ingest → compose → render → delivery → reconcile → report, with the ledger and storage below
them and `stages` as the only thing the Airflow DAGs call."""
