"""Signing in through an OpenID Connect provider: a small real provider on loopback (discovery,
token endpoint, signing keys; RS256 ID tokens) and the desk's Authlib client against it. The
desk takes the user's roles from the ID token's roles claim, keeps its own copy of the user, and
refuses a tampered round trip."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI, Form
from joserfc import jwt
from joserfc.jwk import RSAKey

from pipeline.desk.accounts import UNKNOWN_USER, get_user
from pipeline.desk.audit import entries
from pipeline.desk.permissions import Role
from tests.web.conftest import Desk, World

CLIENT_ID, CLIENT_SECRET = "eob-desk", "provider-shared-secret"


class Provider:
    """An identity provider that signs in whoever the test says, with the claims it says."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.issuer = ""
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"], "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"]}

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.post("/token")
        def token(code: str = Form(...)) -> dict[str, Any]:
            claims = self.codes.pop(code)
            now = int(time.time())
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, {
                "iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, **claims}, self.key)
            return {"access_token": uuid.uuid4().hex, "token_type": "Bearer", "expires_in": 300,
                    "id_token": id_token}

        self.app = app

    def sign_in(self, authorize_url: str, **claims: Any) -> str:
        """What the provider does after the user signs in there: the callback URL with a code."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        assert query["client_id"] == CLIENT_ID and "openid" in query["scope"]
        code = uuid.uuid4().hex
        self.codes[code] = {"nonce": query["nonce"], **claims}
        return f"{urlsplit(query['redirect_uri']).path}?code={code}&state={query['state']}"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    import uvicorn

    made = Provider()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    made.issuer = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(made.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield made
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def oidc_desk(desk_world: World, tmp_path: Path, provider: Provider) -> Iterator[Desk]:
    made = Desk(desk_world, tmp_path, web_oidc_issuer=provider.issuer, web_oidc_client_id=CLIENT_ID,
                web_oidc_client_secret=CLIENT_SECRET)
    yield made
    made.close()


def test_a_provider_sign_in_gives_the_roles_of_its_claim(oidc_desk: Desk, provider: Provider) -> None:
    client = oidc_desk.client()
    assert "Sign in with your company account" in client.get("/signin").text
    start = client.get("/signin/oidc")
    assert start.status_code == 302 and start.headers["location"].startswith(provider.issuer)
    callback = provider.sign_in(start.headers["location"], sub="u-123", preferred_username="Jo.Smith",
                                name="Jo Smith", eob_roles=["supervisor", "not_a_desk_role"])
    landed = client.get(callback)
    assert landed.status_code == 200 and 'http-equiv="refresh"' in landed.text
    assert client.get("/").headers["location"] == "/search"
    assert client.get("/approvals").status_code == 200
    user = get_user(oidc_desk.ctx.ledger, "jo.smith")
    assert user is not None and user.oidc and user.roles == frozenset({Role.SUPERVISOR})
    signed = entries(oidc_desk.ctx.ledger, actor="jo.smith")[0]
    assert signed.action == "sign_in" and signed.detail["method"] == "oidc"


def test_a_user_the_provider_gives_no_desk_role_sees_nothing(oidc_desk: Desk, provider: Provider) -> None:
    client = oidc_desk.client()
    start = client.get("/signin/oidc")
    client.get(provider.sign_in(start.headers["location"], sub="u-9", preferred_username="visitor"))
    assert client.get("/").headers["location"] == "/welcome"
    assert "has no role on the desk yet" in client.get("/welcome").text
    assert client.get("/search").status_code == 403


def test_a_callback_with_another_state_is_refused(oidc_desk: Desk, provider: Provider) -> None:
    client = oidc_desk.client()
    start = client.get("/signin/oidc")
    callback = provider.sign_in(start.headers["location"], sub="u-1", preferred_username="mallory",
                                eob_roles=["admin"])
    forged = callback.rsplit("state=", 1)[0] + "state=" + "x" * 30
    refused = client.get(forged)
    assert refused.status_code == 401 and "did not complete" in refused.text
    assert get_user(oidc_desk.ctx.ledger, "mallory") is None
    other = oidc_desk.client()  # another browser, without the round trip's own cookie
    assert other.get(callback).status_code == 401
    failures = [e for e in entries(oidc_desk.ctx.ledger) if e.action == "sign_in_failed"]
    assert [e.detail for e in failures] == [{"method": "oidc", "error": "mismatching_state"}] * 2
    assert failures[0].actor == UNKNOWN_USER and failures[0].source == "testclient"


def test_a_sign_in_the_provider_refused_is_audited_with_its_error_code(oidc_desk: Desk,
                                                                       provider: Provider) -> None:
    client = oidc_desk.client()
    start = client.get("/signin/oidc")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    refused = client.get(f"/signin/oidc/callback?error=access_denied&state={state}")
    assert refused.status_code == 401 and "did not complete" in refused.text
    failed = entries(oidc_desk.ctx.ledger)[0]
    assert failed.action == "sign_in_failed" and failed.detail == {"method": "oidc", "error": "access_denied"}


def test_a_provider_user_named_like_a_local_account_does_not_get_it(oidc_desk: Desk,
                                                                    provider: Provider) -> None:
    client = oidc_desk.client()
    start = client.get("/signin/oidc")
    callback = provider.sign_in(start.headers["location"], sub="u-evil", preferred_username="admin",
                                eob_roles=["admin"])
    refused = client.get(callback)
    assert refused.status_code == 401 and "The company sign-in was refused" in refused.text
    assert client.get("/users").status_code == 303, "no session"
    admin = get_user(oidc_desk.ctx.ledger, "admin")
    assert admin is not None and not admin.oidc and admin.roles == frozenset({Role.ADMIN})
