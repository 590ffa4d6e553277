"""Starts the local Okta (the `okta-sim` binary, OKTA_SIM_BIN) with a seed made for these tests."""

import asyncio
import json
import os
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

API_TOKEN = "00sdk-test-token"
GROUP_COUNT = 23
MEMBER_COUNT = 12


def _private_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


@pytest.fixture(scope="session")
def service_key():
    return _private_key()


@pytest.fixture(scope="session")
def sim(tmp_path_factory, service_key):
    binary = os.environ["OKTA_SIM_BIN"]
    workdir = tmp_path_factory.mktemp("sim")
    members = [f"member{i:02}@example.com" for i in range(MEMBER_COUNT)]
    seed = {
        "users": [{"login": login, "password": "pw"} for login in members]
        + [{"login": "alice@example.com", "password": "alice-password"},
           {"login": "carol@example.com", "password": "carol-password"}],
        "groups": [{"name": f"k8s-team-{i:02}", "description": f"team {i}"} for i in range(GROUP_COUNT)]
        + [{"name": "k8s-big", "members": members},
           {"name": "k8s-admins", "members": ["alice@example.com"]},
           {"name": "engineering", "members": ["alice@example.com", "carol@example.com"]}],
        "apiTokens": [{"name": "sdk", "token": API_TOKEN}],
        "clients": [
            {"clientId": "0oaservice", "publicKeyPem": service_key[1], "scopes": ["okta.groups.read"]},
            {"clientId": "0oaservice-dpop", "publicKeyPem": service_key[1], "scopes": ["okta.groups.read"],
             "dpopBoundAccessTokens": True},
            {"clientId": "kubernetes", "redirectUris": ["http://localhost:8000"]},
        ],
        "authorizationServers": [{"id": "default"}],
    }
    seed_path = workdir / "seed.yaml"
    seed_path.write_text(json.dumps(seed))  # JSON is YAML
    ca_path = workdir / "ca.pem"
    process = subprocess.Popen(
        [binary, "--seed", str(seed_path), "--listen", "127.0.0.1:0", "--ca-out", str(ca_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    org_url = None
    for line in process.stdout:
        if line.startswith("org URL: "):
            org_url = line.split(": ", 1)[1].strip()
        if line.startswith("ready:"):
            break
    assert org_url, "the simulator printed no org URL"
    ssl_context = ssl.create_default_context(cafile=str(ca_path))
    yield {"url": org_url, "ca": str(ca_path), "ssl": ssl_context, "binary": binary}
    process.terminate()
    process.wait(timeout=10)


def admin(sim, method, path, body=None):
    """Calls the simulator's /_sim admin API."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(sim["url"] + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=sim["ssl"]) as response:
        return json.loads(response.read() or b"null")


def run(coroutine):
    return asyncio.run(coroutine)
