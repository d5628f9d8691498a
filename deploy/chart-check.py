"""Checks rendered manifests (helm template output on stdin) for what the platform promises:
no container runs as root or can gain privileges, every root filesystem is read-only, every
service has its probes, only the gateway is reachable from outside. Prints what each service
gets. Run by deploy/chart-test.sh with the tools' Python (it has PyYAML)."""

import collections
import sys

import yaml

docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
problems = []
objects = collections.defaultdict(list)


def component(doc):
    return doc["metadata"].get("labels", {}).get("app.kubernetes.io/component", "-")


for doc in docs:
    objects[component(doc)].append(doc["kind"])
    pod = None
    if doc["kind"] == "Deployment":
        pod = doc["spec"]["template"]["spec"]
    elif doc["kind"] == "Job":
        pod = doc["spec"]["template"]["spec"]
    if pod is not None:
        name = doc["metadata"]["name"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: pod may run as root")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem"):
                problems.append(f"{name}/{c['name']}: writable root filesystem")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}/{c['name']}: may escalate privileges")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}/{c['name']}: keeps capabilities")
            if doc["kind"] == "Deployment":
                if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                    problems.append(f"{name}: no readiness probe on /readyz")
                if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                    problems.append(f"{name}: no liveness probe on /healthz")
    if doc["kind"] == "Service" and doc["spec"].get("type", "ClusterIP") != "ClusterIP":
        problems.append(f"{doc['metadata']['name']}: Service of type {doc['spec']['type']}")
    if doc["kind"] == "Ingress":
        for rule in doc["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]["name"]
                if not backend.endswith("-gateway"):
                    problems.append(f"Ingress routes to {backend}, not the gateway")

deployments = {component(d) for d in docs if d["kind"] == "Deployment"}
policies = {component(d): d for d in docs if d["kind"] == "NetworkPolicy"}
for service in sorted(deployments):
    policy = policies.get(service)
    if policy is None:
        problems.append(f"{service}: no NetworkPolicy")
        continue
    # A rule without `from` admits anyone: only the gateway may have one.
    if service != "gateway" and any("from" not in rule for rule in policy["spec"].get("ingress", [])):
        problems.append(f"{service}: reachable from anywhere")

for service, kinds in sorted(objects.items()):
    counts = collections.Counter(kinds)
    print(f"  {service:<22} " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
if problems:
    print("\n".join(["chart-check: FAILED"] + [f"  - {p}" for p in problems]), file=sys.stderr)
    sys.exit(1)
print(f"  {len(docs)} objects; no container runs as root; only the gateway is reachable from outside")
