"""The values for the official Airflow Helm chart (infra/helm/): both variants name only keys the
chart documents, give every pod the same secrets from existing Kubernetes Secrets, run the image
this project builds, and create the pools and connections the DAGs need.

`helm` is not packaged for this machine: without it (and a copy of the chart, EOB_AIRFLOW_CHART)
the chart itself is not rendered here; docs/deployment.md gives the `helm lint` and `helm template`
commands to run where it is."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from pipeline.settings import Settings
from tests.infra.support import (
    INFRA,
    POOLS_JSON,
    VENV_BIN,
    clean_env,
    generated_secrets,
    pool_names,
    require_tool,
)
from tests.support import REPO

HELM = INFRA / "helm"
VARIANTS = {"values-celery.yaml": "CeleryExecutor", "values-kubernetes.yaml": "KubernetesExecutor"}
WORKERS = {"CeleryExecutor": "celery", "KubernetesExecutor": "kubernetes"}
DOCKERFILE = INFRA / "compose" / "Dockerfile"

# Every key path these values set, as the chart (1.22.x) documents it in its values.yaml and
# parameters reference. A path not under one of these is a typo the chart would reject (its
# values.schema.json forbids unknown keys) or, worse, silently ignore.
CHART_KEYS = {
    "defaultAirflowRepository", "defaultAirflowTag", "images.airflow.repository", "images.airflow.tag",
    "images.airflow.pullPolicy", "airflowVersion", "airflowHome", "uid", "gid", "executor",
    "fernetKeySecretName", "jwtSecretName", "apiSecretKeySecretName",
    "postgresql.enabled", "data.metadataSecretName", "data.brokerUrlSecretName",
    "redis.enabled", "redis.passwordSecretName", "pgbouncer.enabled",
    "secret", "extraEnvFrom", "volumes", "volumeMounts",
    "config.core.load_examples", "config.core.auth_manager", "config.core.simple_auth_manager_users",
    "config.core.simple_auth_manager_passwords_file", "config.core.execution_api_server_url",
    "config.api.base_url", "config.celery.worker_concurrency", "config.celery.celery_config_options",
    "config.dag_processor.min_file_process_interval", "config.workers.min_heartbeat_interval",
    "dags.mountPath", "dags.persistence.enabled", "dags.gitSync.enabled",
    "migrateDatabaseJob.enabled", "migrateDatabaseJob.applyCustomEnv", "migrateDatabaseJob.args",
    "migrateDatabaseJob.extraVolumes", "migrateDatabaseJob.extraVolumeMounts", "createUserJob.enabled",
    "apiServer.replicas", "apiServer.extraVolumes", "apiServer.extraVolumeMounts", "apiServer.resources",
    "scheduler.replicas", "scheduler.resources", "dagProcessor.enabled", "dagProcessor.resources",
    "triggerer.replicas", "triggerer.resources",
    "workers.celery.replicas", "workers.celery.resources", "workers.celery.terminationGracePeriodSeconds",
    "workers.celery.persistence.enabled", "workers.celery.persistence.size",
    "workers.kubernetes.resources", "workers.kubernetes.terminationGracePeriodSeconds",
    "cleanup.enabled",
}
LIST_OR_OBJECT_VALUES = {"secret", "volumes", "volumeMounts", "migrateDatabaseJob.args",
                         "migrateDatabaseJob.extraVolumes", "migrateDatabaseJob.extraVolumeMounts",
                         "apiServer.extraVolumes", "apiServer.extraVolumeMounts"}
RESOURCES = ("apiServer.resources", "scheduler.resources", "dagProcessor.resources",
             "triggerer.resources", "workers.celery.resources", "workers.kubernetes.resources")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (PyYAML otherwise keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = {key for key in keys if keys.count(key) > 1}
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"keys given twice: {sorted(repeated)}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load(name: str) -> dict[str, Any]:
    return yaml.load((HELM / name).read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)


def leaves(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in LIST_OR_OBJECT_VALUES or any(path.startswith(r + ".") or path == r for r in RESOURCES):
            out[path] = value
        elif isinstance(value, dict) and value:
            out |= leaves(value, path + ".")
        else:
            out[path] = value
    return out


def get(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, load(request.param)


def dockerfile_env(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", DOCKERFILE.read_text())
    assert match, f"the Dockerfile sets no {name}"
    return match[1]


def test_values_parse_without_a_key_given_twice() -> None:
    for name in VARIANTS:
        assert isinstance(load(name), dict)
    with pytest.raises(yaml.constructor.ConstructorError, match="given twice"):
        yaml.load("executor: CeleryExecutor\nexecutor: KubernetesExecutor\n", Loader=_UniqueKeyLoader)  # noqa: S506


def test_only_keys_the_chart_documents(variant: tuple[str, dict[str, Any]]) -> None:
    name, values = variant
    resource_paths = {path for path in leaves(values) if path in RESOURCES}
    unknown = sorted(set(leaves(values)) - CHART_KEYS - resource_paths)
    assert not unknown, f"{name}: keys the chart does not document: {unknown}"
    for path in resource_paths:
        assert set(get(values, path)) == {"requests", "limits"}, f"{name}: {path}"


def test_every_airflow_cfg_option_is_one_airflow_knows(variant: tuple[str, dict[str, Any]]) -> None:
    """`config:` becomes airflow.cfg: a misspelt option would be ignored without a word."""
    from airflow.configuration import conf

    name, values = variant
    options = [path.split(".")[1:] for path in leaves(values) if path.startswith("config.")]
    assert options
    known = conf.configuration_description  # Airflow's own and its providers' options
    unknown = [f"[{section}] {key}" for section, key in options
               if key not in known.get(section, {}).get("options", {})]
    assert not unknown, f"{name}: options Airflow does not know: {unknown}"


def test_the_executor_and_its_broker(variant: tuple[str, dict[str, Any]]) -> None:
    name, values = variant
    executor = VARIANTS[name]
    assert values["executor"] == executor
    assert values["postgresql"]["enabled"] is False, "metadata DB: external PostgreSQL"
    celery = executor == "CeleryExecutor"
    assert values["redis"]["enabled"] is celery
    assert ("brokerUrlSecretName" in values["data"]) is celery
    assert set(values["workers"]) == {WORKERS[executor]}


Variant = tuple[str, dict[str, Any]]


def test_every_pod_gets_the_same_secrets_from_one_existing_secret(variant: Variant) -> None:
    name, values = variant
    names = {values[key] for key in ("fernetKeySecretName", "jwtSecretName", "apiSecretKeySecretName")}
    assert len(names) == 1 and None not in names, f"{name}: {names}"
    for generated in ("fernetKey", "jwtSecret", "apiSecretKey"):
        assert generated not in values, (
            f"{name}: {generated} would put the secret in the values (or rotate it)")
    [async_url] = [item for item in values["secret"]
                   if item["envName"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
    assert async_url["secretName"] == values["data"]["metadataSecretName"]


def test_every_task_reaches_the_api_server(variant: tuple[str, dict[str, Any]]) -> None:
    name, values = variant
    url = urlsplit(values["config"]["core"]["execution_api_server_url"])
    assert url.netloc == "{{ .Release.Name }}-api-server:{{ .Values.ports.apiServer }}", name
    assert url.scheme == "http" and url.path == "/execution/", name


def test_values_match_the_image(variant: tuple[str, dict[str, Any]]) -> None:
    name, values = variant
    assert values["airflowVersion"] == importlib.metadata.version("apache-airflow"), (
        f"{name}: airflowVersion must be the version uv.lock installs")
    assert values["airflowHome"] == dockerfile_env("AIRFLOW_HOME")
    assert f"USER {values['uid']}" in DOCKERFILE.read_text()
    assert values["images"]["airflow"]["repository"] == values["defaultAirflowRepository"]
    assert values["dags"]["mountPath"] == dockerfile_env("AIRFLOW__CORE__DAGS_FOLDER")
    if importlib.util.find_spec("airflow.providers.fab") is None:  # as in the image: uv.lock has no FAB
        assert values["config"]["core"]["auth_manager"].endswith(".SimpleAuthManager")
        assert values["createUserJob"]["enabled"] is False


def test_migration_job_creates_the_pools_the_dags_use(variant: tuple[str, dict[str, Any]]) -> None:
    name, values = variant
    job = values["migrateDatabaseJob"]
    assert job["args"][:2] == ["bash", "-c"]
    steps = [" ".join(step.split()) for step in job["args"][2].split(";") if step.strip()]
    image_pools = "/opt/eob/" + str(POOLS_JSON.relative_to(REPO))
    connections = "/etc/eob/connections/connections.json"
    expected = ["set -e", f"if grep -q REPLACE-ME {connections}", "airflow db migrate",
                f"airflow pools import {image_pools}", f"airflow connections import {connections}",
                "eob migrate"]
    positions = [next(i for i, step in enumerate(steps) if step.startswith(want)) for want in expected]
    assert positions == sorted(positions), f"{name}: {steps}"
    assert job["applyCustomEnv"] is True, "`eob migrate` needs the EOB_* environment"
    mounted = {mount["mountPath"] for mount in job["extraVolumeMounts"]}
    assert str(Path(connections).parent) in mounted
    assert "COPY infra/ infra/" in DOCKERFILE.read_text(), "the image must hold infra/airflow/pools.json"
    named = set(re.findall(r'pool="([^"]+)"', "".join(p.read_text() for p in (REPO / "dags").glob("*.py"))))
    missing = named - pool_names()
    assert named and not missing, f"pools the DAGs name but pools.json lacks: {missing}"


def test_eob_settings_reach_every_airflow_container(variant: tuple[str, dict[str, Any]]) -> None:
    name, values = variant
    sources = yaml.safe_load(values["extraEnvFrom"])
    assert {next(iter(source)) for source in sources} == {"configMapRef", "secretRef"}, name
    mounts = {mount["name"]: mount["mountPath"] for mount in values["volumeMounts"]}
    assert set(mounts) == {volume["name"] for volume in values["volumes"]}


def test_a_send_task_is_never_cut_short(variant: tuple[str, dict[str, Any]]) -> None:
    name, values = variant
    workers = values["workers"][WORKERS[VARIANTS[name]]]
    assert workers["terminationGracePeriodSeconds"] > Settings.model_fields["send_max_seconds"].default


def test_both_variants_differ_only_in_executor_broker_and_workers() -> None:
    celery, kubernetes = (leaves(load(name)) for name in sorted(VARIANTS))
    own = re.compile(r"^(executor|redis\.|data\.brokerUrlSecretName|config\.celery\.|workers\.|cleanup\.)")
    shared = {path for path in celery.keys() | kubernetes.keys() if not own.match(path)}
    drift = sorted(path for path in shared if celery.get(path) != kubernetes.get(path))
    assert not drift, f"the two variants disagree on {drift}"


# -- the chart itself, where helm is installed ------------------------------------------------------

def test_helm_renders_both_variants(tmp_path: Path) -> None:
    helm = require_tool("helm", "`helm lint` and `helm template` render the chart with these values")
    chart = os.environ.get("EOB_AIRFLOW_CHART")
    if not chart:
        message = ("EOB_AIRFLOW_CHART is unset: give the chart (a folder or a .tgz of "
                   "apache-airflow/airflow 1.22.x)")
        if os.environ.get("EOB_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    for name in VARIANTS:
        values = str(HELM / name)
        lint = subprocess.run([helm, "lint", chart, "--values", values], capture_output=True, text=True,
                              timeout=300)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        rendered = subprocess.run([helm, "template", "eob", chart, "--namespace", "eob", "--values", values],
                                  capture_output=True, text=True, timeout=300)
        assert rendered.returncode == 0, rendered.stderr
        documents = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
        kinds = {doc["kind"] for doc in documents}
        assert {"Deployment", "Job"} <= kinds, name
        text = rendered.stdout
        for secret in ("eob-airflow-keys", "eob-airflow-metadata", "eob-pipeline-secrets"):
            assert secret in text, f"{name}: nothing renders {secret}"
        assert "airflow pools import /opt/eob/infra/airflow/pools.json" in text


# -- the migration job's commands, run for real against throwaway databases --------------------------

def test_migration_job_prepares_empty_databases(variant: Variant, throwaway_databases: dict[str, str],
                                                tmp_path: Path) -> None:
    """The job's own `bash -c` line, with the image's paths mapped onto this checkout and its venv:
    on empty databases it leaves the pools, the encrypted relay logins and a migrated ledger."""
    import psycopg

    name, values = variant
    connections = tmp_path / "connections.json"
    shipped = (INFRA / "airflow" / "connections.json").read_text()
    connections.write_text(shipped.replace("REPLACE-ME-", "relay-"))
    script = values["migrateDatabaseJob"]["args"][2].replace("/opt/eob/", f"{REPO}/")
    script = script.replace("/etc/eob/connections/connections.json", str(connections))
    metadata = throwaway_databases["airflow"].replace("postgresql://", "postgresql+psycopg://")
    env = clean_env(**generated_secrets(), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata,
                    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=metadata, AIRFLOW_HOME=str(tmp_path),
                    AIRFLOW__CORE__EXECUTOR=VARIANTS[name], AIRFLOW__CORE__LOAD_EXAMPLES="False",
                    EOB_LEDGER_URL=throwaway_databases["ledger"], EOB_WORKSPACE=str(tmp_path / "ws"))
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with psycopg.connect(throwaway_databases["airflow"]) as conn:
        pools = {row[0] for row in conn.execute("SELECT pool FROM slot_pool")}
        encrypted = dict(conn.execute("SELECT conn_id, is_encrypted FROM connection").fetchall())
    assert pool_names() <= pools, name
    assert encrypted == {"smtp_pool_a": True, "smtp_pool_b": True}, name
