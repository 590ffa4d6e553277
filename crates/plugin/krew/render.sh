#!/usr/bin/env bash
# Renders the krew manifest for a release: render.sh VERSION ARCHIVE_DIR > okta-rbac.yaml,
# where ARCHIVE_DIR holds kubectl-okta_rbac-linux-{amd64,arm64}.tar.gz.
set -euo pipefail
version="$1"
archives="$2"
sha() { sha256sum "$archives/kubectl-okta_rbac-linux-$1.tar.gz" | cut -d' ' -f1; }
sed -e "s/@VERSION@/${version}/g" \
    -e "s/@SHA256_LINUX_AMD64@/$(sha amd64)/" \
    -e "s/@SHA256_LINUX_ARM64@/$(sha arm64)/" \
    "$(dirname "$0")/okta-rbac.yaml"
