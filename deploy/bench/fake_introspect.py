# Temporary stand-in RFC 7662 endpoint for testing nginx.sh (to be deleted).
import base64, json, sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import parse_qs
COUNT = 0; LOCK = threading.Lock()
GOOD = 'Basic ' + base64.b64encode(b'bench-client:bench-secret').decode()
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        global COUNT
        with LOCK: COUNT += 1
        body = self.rfile.read(int(self.headers.get('Content-Length', 0))).decode()
        form = parse_qs(body)
        ok = (self.headers.get('Authorization') == GOOD and self.headers.get('Content-Type') == 'application/x-www-form-urlencoded'
              and form.get('token') == ['good'])
        sys.stderr.write(f'POST {self.path} auth={self.headers.get("Authorization")} ct={self.headers.get("Content-Type")} body={body!r} -> {ok}\n')
        out = json.dumps({'active': ok}).encode()
        self.send_response(200); self.send_header('Content-Type', 'application/json')
        self.send_header('Cache-Control', 'no-store'); self.send_header('Content-Length', str(len(out))); self.end_headers()
        self.wfile.write(out)
    def do_GET(self):
        out = str(COUNT).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(out))); self.end_headers(); self.wfile.write(out)
ThreadingHTTPServer(('127.0.0.1', 18082), H).serve_forever()
