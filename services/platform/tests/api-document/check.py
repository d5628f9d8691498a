"""The API document tells the truth (issue 15): the embedded platform (target/debug/platform)
on ports of its own; the README's first ten minutes through generated clients (clients.py);
both documents validated; then, with a user and an application registered as the README does,
Schemathesis against the OpenAPI 3.1 document with every check. Exits non-zero on any failure.

Run by deploy/api-document-test.sh, which builds the platform and the virtualenv."""

import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from openapi_spec_validator import validate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
BASE_PORT = 23000 + random.randrange(0, 400) * 10
GATEWAY = f"http://127.0.0.1:{BASE_PORT}"
ADMIN = ("admin", "api-document-test-password")
OWNER = ("owner", "api-document-owner-password")
SCOPES = ["profile", "email", "phone", "blog:read", "blog:write", "blog:admin", "notifications",
          "notifications:send", "webhooks:manage", "introspect"]
SERVICES = ["AUTH", "INTROSPECTION", "USER_PROFILE", "BLOG", "WEBHOOK", "NOTIFICATION_DISPATCH", "PORTAL"]


def platform_env():
    env = dict(os.environ)
    env.update({
        "RUST_LOG": "warn",
        "BOOTSTRAP_ADMIN_USERNAME": ADMIN[0],
        "BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        "GATEWAY_HTTP__PORT": str(BASE_PORT),
        "GATEWAY_TOKENS__ISSUER": GATEWAY,
        "GATEWAY_DOCS__PUBLIC_URL": GATEWAY,
        "AUTH_OAUTH__ISSUER": GATEWAY,
        "INTROSPECTION_AUTH__ISSUER": GATEWAY,
        "PORTAL_PORTAL__PUBLIC_URL": f"{GATEWAY}/portal",
        "PORTAL_PORTAL__GATEWAY_URL": GATEWAY,
        # A fuzzer is not a partner: the gateway's rate limits would answer most of its requests.
        "GATEWAY_RATE_LIMITS__PARTNER__RATE": "100000",
        "GATEWAY_RATE_LIMITS__PARTNER__BURST": "100000",
        "GATEWAY_RATE_LIMITS__PUBLIC__RATE": "100000",
        "GATEWAY_RATE_LIMITS__PUBLIC__BURST": "100000",
    })
    for offset, name in enumerate(SERVICES, start=1):
        url = f"http://127.0.0.1:{BASE_PORT + offset}"
        env[f"{name}_HTTP__PORT"] = str(BASE_PORT + offset)
        env[f"GATEWAY_UPSTREAMS__{name}"] = url
        if name == "AUTH":
            env["INTROSPECTION_AUTH__URL"] = url
        if name == "INTROSPECTION":
            env["GATEWAY_INTROSPECTION__URL"] = f"{url}/oauth2/introspect"
    return env


def call(method, path, body=None, headers=None, form=None):
    headers = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in form.items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(GATEWAY + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_ready(platform):
    for _ in range(600):
        if platform.poll() is not None:
            sys.exit(f"the platform exited with {platform.returncode}")
        try:
            with urllib.request.urlopen(f"{GATEWAY}/openapi.json") as res:
                doc = json.load(res)
                if "x-unavailable" not in doc["info"]:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    sys.exit("the platform did not become ready")


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def partner():
    """The README's partner: a registration-platform user's application, and tokens for the
    administrator through it. The application belongs to someone else than the user the
    fuzzer acts as, so the run cannot rotate, restrict or delete what its own tokens stand on
    (it does all of that to the applications it creates)."""
    status, seed = call("POST", "/oauth", headers={"Authorization": basic(*ADMIN)})
    assert status == 200, seed
    admin = {"Authorization": f"Bearer {seed['access_token']}"}
    status, owner = call("POST", "/users", body={"username": OWNER[0], "email": "owner@example.com", "password": OWNER[1]})
    assert status == 201, owner
    status, roles = call("PUT", f"/accounts/{owner['data']['id']}/roles", headers=admin, body={"roles": ["registration_platform"]})
    assert status == 200, roles
    status, seed = call("POST", "/oauth", headers={"Authorization": basic(*OWNER)})
    assert status == 200, seed
    status, app = call("POST", "/applications", headers={"Authorization": f"Bearer {seed['access_token']}"}, body={
        "name": "API document check", "scopes": SCOPES,
        "grant_types": ["password", "client_credentials", "refresh_token"],
    })
    assert status == 201, app
    client_id, secret = app["data"]["client_id"], app["data"]["client_secret"]
    status, token = call("POST", "/oauth2/token", headers={"Authorization": basic(client_id, secret)}, form={
        "grant_type": "password", "username": ADMIN[0], "password": ADMIN[1], "scope": " ".join(SCOPES),
    })
    assert status == 200, token
    status, app_token = call("POST", "/oauth2/token", headers={"Authorization": basic(client_id, secret)}, form={
        "grant_type": "client_credentials", "scope": "webhooks:manage notifications:send",
    })
    assert status == 200, app_token
    return {
        "API_APP_TOKEN": app_token["access_token"],
        "API_BASE": GATEWAY,
        "API_CLIENT_ID": client_id,
        "API_CLIENT_SECRET": secret,
        "API_USERNAME": ADMIN[0],
        "API_PASSWORD": ADMIN[1],
        "API_SCOPES": ",".join(SCOPES),
    }


def fetch(path):
    with urllib.request.urlopen(GATEWAY + path) as res:
        return json.load(res)


def main():
    venv_bin = Path(sys.executable).parent
    data_dir = Path(tempfile.mkdtemp(prefix="api-document-"))
    log = open(data_dir / "platform.log", "w")
    platform = subprocess.Popen([str(ROOT / "target/debug/platform")], cwd=data_dir, env=platform_env(),
                                stdout=log, stderr=log)
    try:
        wait_ready(platform)
        openapi = fetch("/openapi.json")
        spec = data_dir / "openapi.json"
        spec.write_text(json.dumps(openapi))
        # The generated clients first, on a fresh platform: the fuzzer then revokes, rotates and
        # deletes what it finds.
        subprocess.run([sys.executable, str(HERE / "clients.py"), GATEWAY, *ADMIN, str(spec), str(data_dir)], check=True)
        validate(openapi)
        print(f"api-document: /openapi.json is a valid OpenAPI {openapi['openapi']} document "
              f"({sum(len([m for m in item if m != 'parameters']) for item in openapi['paths'].values())} operations)")
        swagger = fetch("/swagger/swagger.json")
        validate(swagger)
        print(f"api-document: /swagger/swagger.json is a valid Swagger {swagger['swagger']} document")
        env = dict(os.environ, **partner(), SCHEMATHESIS_HOOKS="hooks")
        env["PYTHONPATH"] = str(HERE)
        run = subprocess.run(
            [str(venv_bin / "schemathesis"), "run", str(spec), "--url", GATEWAY, "--checks", "all",
             "--max-examples", os.environ.get("API_DOCUMENT_EXAMPLES", "50"), "--workers", "2",
             "--seed", os.environ.get("API_DOCUMENT_SEED", "1"), "--no-color"],
            env=env, cwd=HERE,
        )
        if run.returncode != 0:
            sys.exit(f"api-document: schemathesis found failures (platform log: {data_dir / 'platform.log'})")
    finally:
        platform.send_signal(signal.SIGTERM)
        platform.wait(timeout=30)
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
