"""Schemathesis hooks: the credentials a partner would send. The driver (check.py) puts them in
the environment: a user's bearer token, and the application's client credentials for the
endpoints that authenticate clients (RFC 6749 §2.3)."""

import base64
import json
import os
import time
import urllib.error
import urllib.request

import schemathesis

CLIENT_AUTHENTICATED = {"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect", "/mcg/v1/tokeninfo"}
# What an application calls with its own token (README: webhooks, providers, seed 004's sends).
APPLICATION_PATHS = ("/webhooks/endpoints", "/providers", "/Services")


def _basic():
    pair = f"{os.environ['API_CLIENT_ID']}:{os.environ['API_CLIENT_SECRET']}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _throwaway_token():
    """A token of its own for `DELETE /revoke`, which revokes the token it is called with. The
    fuzzer's failed password grants may keep auth's password checks busy: a partner waits
    `Retry-After` and tries again, and so does this."""
    body = f"grant_type=password&username={os.environ['API_USERNAME']}&password={os.environ['API_PASSWORD']}&scope=profile"
    for _ in range(20):
        req = urllib.request.Request(
            os.environ["API_BASE"] + "/oauth2/token",
            data=body.encode(),
            headers={"Authorization": _basic(), "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(req) as res:
                return json.load(res)["access_token"]
        except urllib.error.HTTPError as error:
            if error.code != 429:
                raise
            time.sleep(float(error.headers.get("Retry-After", "1")))
    raise RuntimeError("no token for DELETE /revoke")


@schemathesis.auth(refresh_interval=None)
class PartnerCredentials:
    def get(self, case, context):
        path = case.operation.path
        if path in CLIENT_AUTHENTICATED:
            return _basic()
        if path == "/revoke":
            return "Bearer " + _throwaway_token()
        if path.startswith(APPLICATION_PATHS):
            return "Bearer " + os.environ["API_APP_TOKEN"]
        return "Bearer " + os.environ["API_TOKEN"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = data
        # RFC 6749 §2.3: one authentication method per request. With HTTP Basic sent, the
        # form's client_id/client_secret (the other method) stay out.
        if data.startswith("Basic ") and isinstance(case.body, dict):
            case.body.pop("client_id", None)
            case.body.pop("client_secret", None)
