#!/usr/bin/env bash
# Part of `make test`: the images and the Helm chart, checked without a cluster or a Docker
# engine. Lints the Dockerfile (hadolint); checks that every service binary has an image
# target, a compose service and a chart values block; lints the chart (helm lint --strict);
# renders it with the default and the production-like values and validates every manifest
# against Kubernetes' schemas; checks what the manifests promise (deploy/chart-check.py); and
# shows that broken values fail with a message naming them.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(deploy/chart-tools.sh)"
CHART=k8s/partner-platform
KUBERNETES=1.33.0
fail() { echo "chart-test: $*" >&2; exit 1; }

echo "== Dockerfile (hadolint)"
hadolint deploy/Dockerfile

echo "== compose file"
python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' deploy/compose.yaml

echo "== every service has its image, compose entry and chart values"
for main in services/*/src/main.rs; do
    service=$(basename "$(dirname "$(dirname "$main")")")
    [[ $service == platform ]] && continue # embedded mode only: no image
    grep -q "^FROM runtime AS $service\$" deploy/Dockerfile || fail "$service: no target in deploy/Dockerfile"
    grep -q "^  $service:\$" deploy/compose.yaml || fail "$service: no service in deploy/compose.yaml"
    grep -q "^  $service:\$" "$CHART/values.yaml" || fail "$service: no block under services in $CHART/values.yaml"
    echo "  $service"
done

echo "== helm lint --strict"
helm lint --strict "$CHART" >/dev/null
helm lint --strict "$CHART" -f "$CHART/values-production.yaml" >/dev/null

for values in values.yaml values-production.yaml; do
    echo "== helm template -f $values | kubernetes-validate $KUBERNETES"
    rendered=$(helm template platform "$CHART" -f "$CHART/$values")
    kubernetes-validate --strict -k "$KUBERNETES" --quiet - <<<"$rendered"
    python3 deploy/chart-check.py <<<"$rendered"
done

echo "== a private CA reaches every pod (values-production.yaml: trustedCa.secretKey)"
rendered=$(helm template platform "$CHART" -f "$CHART/values-production.yaml")
pods=$(grep -cE '^kind: (Deployment|Job)$' <<<"$rendered")
mounts=$(grep -c 'mountPath: /etc/platform-tls$' <<<"$rendered")
files=$(grep -c 'name: PLATFORM_BUS__TLS_CA_FILE$' <<<"$rendered")
((pods > 0 && mounts == pods && files == pods)) || fail "trusted CA: $pods pods, $mounts mounts, $files variables"
echo "  $pods pods mount the CA and trust it for the bus and the cache"
! helm template platform "$CHART" | grep -q platform-tls || fail "the CA is mounted without trustedCa.secretKey"

echo "== a new service is a values block"
helm template platform "$CHART" \
    --set services.webhook.enabled=true --set services.webhook.port=8086 --set services.webhook.replicas=1 \
    --set services.webhook.database=true --set 'services.webhook.callers={gateway}' \
    --set secrets.values.webhook-database-url=postgres://x/webhook \
    | kubernetes-validate --strict -k "$KUBERNETES" --quiet -

echo "== broken values fail, naming them"
expect_failure() {
    local want=$1; shift
    local out
    if out=$(helm template platform "$CHART" "$@" 2>&1); then
        fail "helm template $* should have failed"
    fi
    grep -qF "$want" <<<"$out" || fail "helm template $*: expected '$want' in: $out"
    echo "  $* → $(grep -m1 -F "$want" <<<"$out" | sed 's/^[- ]*//')"
}
expect_failure "services.gateway.replicas: Invalid type. Expected: integer, given: string" --set services.gateway.replicas=two
expect_failure "secrets.values.identity-secret is required" --set secrets.values.identity-secret=
expect_failure "secrets.values.gateway-client-secret must be at least 16 characters" --set secrets.values.gateway-client-secret=short
expect_failure "services.blog.port: Must be less than or equal to 65535" --set services.blog.port=70000
expect_failure "ingress.tls.secretName is required" --set ingress.enabled=true --set ingress.tls.enabled=true
# The manifest checks can fail too: a values file that weakens the pods is caught.
if helm template platform "$CHART" --set securityContext.readOnlyRootFilesystem=false \
    | python3 deploy/chart-check.py >/dev/null 2>&1; then
    fail "chart-check.py accepted a writable root filesystem"
fi
echo "chart-test: ok"
