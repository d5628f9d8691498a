"""Schemathesis hooks: the credentials a partner would send. The driver (check.py) puts them in
the environment: a user's bearer token, and the application's client credentials for the
endpoints that authenticate clients (RFC 6749 §2.3)."""

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import schemathesis

CLIENT_AUTHENTICATED = {"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect", "/mcg/v1/tokeninfo"}
# What an application calls with its own token (README: webhooks, providers, seed 004's sends).
APPLICATION_PATHS = ("/webhooks/endpoints", "/providers", "/Services")


def _basic():
    pair = f"{os.environ['API_CLIENT_ID']}:{os.environ['API_CLIENT_SECRET']}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _password_grant(scope):
    """A user token by the password grant. The fuzzer's failed password grants may keep auth's
    password checks busy: a partner waits `Retry-After` and tries again, and so does this."""
    body = urllib.parse.urlencode({
        "grant_type": "password", "username": os.environ["API_USERNAME"],
        "password": os.environ["API_PASSWORD"], "scope": scope,
    })
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
    raise RuntimeError("auth kept answering 429 to the password grant")


def _user_token():
    """The user's token, signed in again once a run has revoked it: the fuzzer withdraws
    consents and revokes tokens like any user may, and a partner then asks the user to sign in
    again."""
    if _STATE["stale"] or not _STATE["token"]:
        _STATE["token"] = _password_grant(" ".join(os.environ["API_SCOPES"].split(",")))
        _STATE["stale"] = False
    return _STATE["token"]


_STATE = {"token": None, "stale": False}


@schemathesis.hook
def after_call(context, case, response):
    sent = (case.headers or {}).get("Authorization", "")
    if response.status_code == 401 and _STATE["token"] and sent == "Bearer " + _STATE["token"]:
        _STATE["stale"] = True


@schemathesis.auth(refresh_interval=None)
class PartnerCredentials:
    def get(self, case, context):
        path = case.operation.path
        if path in CLIENT_AUTHENTICATED:
            return _basic()
        if path == "/oauth":
            # Seed 002's login takes the user's own credentials.
            pair = f"{os.environ['API_USERNAME']}:{os.environ['API_PASSWORD']}"
            return "Basic " + base64.b64encode(pair.encode()).decode()
        if path == "/revoke":
            # A token of its own: DELETE /revoke revokes the token it is called with.
            return "Bearer " + _password_grant("profile")
        if path.startswith(APPLICATION_PATHS):
            return "Bearer " + os.environ["API_APP_TOKEN"]
        return "Bearer " + _user_token()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = data
        # RFC 6749 §2.3: one authentication method per request. With HTTP Basic sent, the
        # form's client_id/client_secret (the other method) stay out.
        if data.startswith("Basic ") and isinstance(case.body, dict):
            case.body.pop("client_id", None)
            case.body.pop("client_secret", None)
