-- The two databases of the stack, each owned by its own login: "airflow" (Airflow's metadata)
-- and "eob" (the pipeline's ledger). Run once by the postgres image on an empty data volume
-- (/docker-entrypoint-initdb.d), as the superuser, with ON_ERROR_STOP. The passwords come from
-- the container's environment (AIRFLOW_DB_PASSWORD, EOB_DB_PASSWORD in .env), never from here.

\set ON_ERROR_STOP on
\set airflow_password ''
\set eob_password ''
\getenv airflow_password AIRFLOW_DB_PASSWORD
\getenv eob_password EOB_DB_PASSWORD

SELECT :'airflow_password' <> '' AND :'eob_password' <> '' AS passwords_given \gset
\if :passwords_given
\else
  \echo 'set AIRFLOW_DB_PASSWORD and EOB_DB_PASSWORD (infra/compose/.env)'
  SELECT 1/0;
\endif

CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE ROLE eob LOGIN PASSWORD :'eob_password';

CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8';
CREATE DATABASE eob OWNER eob ENCODING 'UTF8';

-- Neither login may open the other's database.
REVOKE CONNECT, TEMPORARY ON DATABASE airflow FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE eob FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE airflow TO airflow;
GRANT CONNECT, TEMPORARY ON DATABASE eob TO eob;

-- PostgreSQL 15 and later: the public schema belongs to the database owner.
\connect airflow
ALTER SCHEMA public OWNER TO airflow;
\connect eob
ALTER SCHEMA public OWNER TO eob;
