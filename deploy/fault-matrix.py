#!/usr/bin/env python3
"""The fault matrix (issue 16 part 4): the production topology of `make up` (one process per
service on real PostgreSQL, Redis and RabbitMQ; the blog twice, behind the gateway), under
steady load through the gateway while one fault happens at a time: a server restarts, or a
service process is SIGKILLed and started again. Counts the requests that failed and the
events lost, prints the table, and fails where the aim is zero: lost events in every case;
failed requests for the servers' restarts and for the death of a service that has a second
replica. Run by `make fault-matrix` and `make test` (alone: it restarts the shared servers).

The load, per second: reads of the caller's profile (user-profile) and of the blog feed (the
blog), each through the gateway's token check, and registrations (auth), whose
`user.registered` must reach user-profile (a profile) and the blog (an author) — an event lost
on the way shows as a profile that never appears."""

import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATEWAY = "http://127.0.0.1:8080"
ADMIN = ("admin", "admin-dev-password")
SECOND_BLOG_PORT = 18084
LOAD_SECONDS = 6
FAULT_AT = 2
SETTLE_SECONDS = 60


def call(method, path, token=None, body=None, basic=None, timeout=15):
    headers = {}
    data = None
    if token:
        headers["authorization"] = f"Bearer {token}"
    if basic:
        headers["authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    if body is not None:
        headers["content-type"] = "application/json"
        data = json.dumps(body).encode()
    request = urllib.request.Request(GATEWAY + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
    except (OSError, ValueError) as err:
        return f"no answer ({type(err).__name__})", None


def run(*args, **kwargs):
    return subprocess.run(args, cwd=ROOT, check=True, **kwargs)


def pid_of(service):
    with open(os.path.join(ROOT, "target/up", f"{service}.pid")) as f:
        return int(f.read())


def start_second_blog(env):
    """The blog's second replica, as deploy/up.sh starts the first, on another port."""
    log = open(os.path.join(ROOT, "target/up/blog-2.log"), "a")
    child_env = dict(os.environ, **env, PLATFORM_HTTP__PORT=str(SECOND_BLOG_PORT))
    child = subprocess.Popen([os.path.join(ROOT, "target/debug/blog")], cwd=ROOT, env=child_env,
                             stdout=log, stderr=log, start_new_session=True)
    with open(os.path.join(ROOT, "target/up/blog-2.pid"), "w") as f:
        f.write(str(child.pid))
    wait_ready(f"http://127.0.0.1:{SECOND_BLOG_PORT}/readyz")
    return child


def wait_ready(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as res:
                if res.status == 200:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    sys.exit(f"fault-matrix: {url} not ready after {seconds} s")


class Load:
    """Steady requests from a few threads; every answer that is not the expected success is a
    failure (a 5xx, a 429, no answer at all)."""

    def __init__(self, token):
        self.token = token
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.failed = {}
        self.registered = []

    def record(self, what, status, ok):
        with self.lock:
            self.sent += 1
            if not ok:
                key = f"{what} {status}"
                self.failed[key] = self.failed.get(key, 0) + 1

    def reader(self, path, per_second):
        while not self.stop.is_set():
            started = time.time()
            status, _ = call("GET", path, token=self.token)
            self.record(f"GET {path.split('?')[0]}", status, status == 200)
            time.sleep(max(0, 1 / per_second - (time.time() - started)))

    def registrar(self, per_second):
        while not self.stop.is_set():
            started = time.time()
            name = "fm" + uuid.uuid4().hex[:12]
            body = {"username": name, "email": f"{name}@example.com", "password": "correct horse battery staple 42"}
            status, answer = call("POST", "/users", body=body)
            self.record("POST /users", status, status == 201)
            if status == 201:
                with self.lock:
                    self.registered.append(answer["data"]["id"])
            time.sleep(max(0, 1 / per_second - (time.time() - started)))

    def run(self, fault):
        threads = [threading.Thread(target=self.reader, args=("/users/me", 10)) for _ in range(2)]
        threads += [threading.Thread(target=self.reader, args=("/blog?size=5", 10)) for _ in range(2)]
        threads += [threading.Thread(target=self.registrar, args=(2,))]
        for t in threads:
            t.start()
        time.sleep(FAULT_AT)
        fault()
        time.sleep(max(0, LOAD_SECONDS - FAULT_AT))
        self.stop.set()
        for t in threads:
            t.join()

    def lost(self):
        """Registered users whose profile never appeared: a lost `user.registered`."""
        waiting = set(self.registered)
        deadline = time.time() + SETTLE_SECONDS
        while waiting and time.time() < deadline:
            for user in list(waiting):
                status, _ = call("GET", f"/users/{user}", token=self.token)
                if status == 200:
                    waiting.discard(user)
            if waiting:
                time.sleep(1)
        return len(waiting)


def restart_server(name):
    def fault():
        run("deploy/servers.sh", "restart", name, stdout=subprocess.DEVNULL)
    return fault


def kill(service):
    """SIGKILL, then waits until the process is gone (a zombie counts as gone: nobody may reap
    it soon) and forgets its pid file, so deploy/up.sh starts it again."""
    pid = pid_of(service)
    os.kill(pid, 9)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    os.remove(os.path.join(ROOT, "target/up", f"{service}.pid"))


def kill_service(name, env):
    def fault():
        kill(name)
        time.sleep(1)
        if name == "blog-2":
            start_second_blog(env)
        else:
            run("deploy/up.sh", "start", stdout=subprocess.DEVNULL)
    return fault


def main():
    env = {"BOOTSTRAP_ADMIN_USERNAME": ADMIN[0], "BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
           "GATEWAY_UPSTREAMS__BLOG": f'["http://127.0.0.1:8084", "http://127.0.0.1:{SECOND_BLOG_PORT}"]'}
    os.environ.update(env)
    run("deploy/up.sh", "start")
    servers = subprocess.run(["deploy/servers.sh", "env"], cwd=ROOT, check=True, capture_output=True, text=True)
    blog_env = {"PLATFORM_BUS__KIND": "rabbitmq"}
    for line in servers.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        os.environ[key] = value.strip("'\"")
    blog_env.update({"PLATFORM_BUS__URL": os.environ["PLATFORM_TEST_AMQP_URL"],
                     "BLOG_DATABASE__URL": os.environ["PLATFORM_TEST_POSTGRES_URL"].rsplit("/", 1)[0] + "/blog"})
    start_second_blog(blog_env)
    wait_ready(GATEWAY + "/readyz")
    status, login = call("POST", "/oauth", basic=ADMIN)
    if status != 200:
        sys.exit(f"fault-matrix: the administrator cannot sign in ({status})")
    token = login["access_token"]

    # (fault, its action, whether the aim is zero failed requests)
    matrix = [
        ("none (baseline)", lambda: None, True),
        ("PostgreSQL restart", restart_server("postgres"), True),
        ("Redis restart", restart_server("redis"), True),
        ("RabbitMQ restart", restart_server("rabbitmq"), False),
        ("SIGKILL blog, one of its 2 replicas", kill_service("blog", env), True),
        ("SIGKILL blog, the other replica", kill_service("blog-2", blog_env), True),
    ] + [(f"SIGKILL {s}, its only replica", kill_service(s, env), False)
         for s in ["auth", "introspection", "user-profile", "webhook", "notification-dispatch"]]

    rows, broken = [], []
    for name, fault, zero_failures in matrix:
        load = Load(token)
        load.run(fault)
        wait_ready(GATEWAY + "/readyz")
        lost = load.lost()
        failed = sum(load.failed.values())
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(load.failed.items())) or "-"
        rows.append((name, load.sent, failed, len(load.registered), lost, detail))
        print(f"fault-matrix: {name}: {load.sent} requests, {failed} failed ({detail}), "
              f"{len(load.registered)} registrations, {lost} events lost", flush=True)
        if lost:
            broken.append(f"{name}: {lost} events lost")
        if zero_failures and failed:
            broken.append(f"{name}: {failed} requests failed ({detail})")

    print("\n| fault | requests | failed | registrations | events lost | failures |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    if broken:
        sys.exit("fault-matrix: aims not met:\n  " + "\n  ".join(broken))


if __name__ == "__main__":
    try:
        main()
    finally:
        for pidfile in ["blog-2.pid"]:
            path = os.path.join(ROOT, "target/up", pidfile)
            if os.path.exists(path):
                try:
                    os.kill(int(open(path).read()), 15)
                except (OSError, ValueError):
                    pass
                os.remove(path)
        subprocess.run(["deploy/up.sh", "stop"], cwd=ROOT)
