"""Verifies one delivery with the `standardwebhooks` package from PyPI, as a partner would.

Reads {"secret", "headers", "body"} as JSON on stdin; exits 0 when the signature verifies,
1 (with the reason) when it does not.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

delivery = json.load(sys.stdin)
try:
    Webhook(delivery["secret"]).verify(delivery["body"], delivery["headers"])
except Exception as error:  # the package raises its own verification errors
    print(f"python standardwebhooks: {error!r}", file=sys.stderr)
    sys.exit(1)
print("python standardwebhooks: verified")
