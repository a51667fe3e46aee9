"""Airflow's REST API over HTTP, as the cluster's ops user: no Airflow import.

`POST /auth/token` (the simple auth manager's login) gives a JWT for `Authorization: Bearer`;
the monitor health endpoint needs none. Only the handful of endpoints the cluster commands use.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

TIMEOUT_SECONDS = 15.0


class ApiError(RuntimeError):
    """The API answered with an error, or not at all; the message says which and where."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float = TIMEOUT_SECONDS) -> Any:
    """One request with a JSON body and answer; ApiError on a non-2xx status or no answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/json", **({"Content-Type": "application/json"} if data else {}),
        **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise ApiError(f"{method} {url}: HTTP {exc.code} {detail}", exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"{method} {url}: no answer ({reason})") from None
    return json.loads(raw) if raw else None


@dataclass(slots=True)
class AirflowApi:
    """The cluster's api-server, logged in as `username` on first use."""

    base_url: str
    username: str
    password: str = field(repr=False)
    _token: str | None = field(default=None, repr=False)

    def health(self) -> dict[str, Any]:
        """`/api/v2/monitor/health`: metadatabase, scheduler, dag-processor, triggerer."""
        return dict(http_json("GET", f"{self.base_url}/api/v2/monitor/health", timeout=5.0))

    def token(self) -> str:
        if self._token is None:
            answer = http_json("POST", f"{self.base_url}/auth/token",
                               {"username": self.username, "password": self.password})
            self._token = str(answer["access_token"])
        return self._token

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        return http_json(method, f"{self.base_url}/api/v2/{path}{query}", body,
                         {"Authorization": f"Bearer {self.token()}"})

    def get_all(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged collection (`key` is its list's name in the answer)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", path, limit=100, offset=len(items), **params)
            items += page[key]
            if not page[key] or len(items) >= int(page.get("total_entries", len(items))):
                return items

    # -- what the commands ask --------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            return dict(self.call("GET", f"dags/{quote(dag_id)}"))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def dag_ids(self) -> list[str]:
        return [item["dag_id"] for item in self.get_all("dags", "dags")]

    def import_errors(self) -> list[dict[str, Any]]:
        return self.get_all("importErrors", "import_errors")

    def pools(self) -> dict[str, dict[str, Any]]:
        return {item["name"]: item for item in self.get_all("pools", "pools")}

    def connection_ids(self) -> list[str]:
        return [item["connection_id"] for item in self.get_all("connections", "connections")]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"dags/{quote(dag_id)}", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        return dict(self.call("POST", f"dags/{quote(dag_id)}/dagRuns", body))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"dags/{quote(dag_id)}/dagRuns/{quote(run_id)}"))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get_all(f"dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances",
                            "task_instances")

    def task_instance_tries(self, dag_id: str, run_id: str, task_id: str,
                            map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (the earlier ones from its history), oldest first."""
        path = f"dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}"
        path += f"/{map_index}/tries" if map_index >= 0 else "/tries"
        tries = self.get_all(path, "task_instances")
        return sorted(tries, key=lambda item: int(item.get("try_number") or 0))
