# okta-rbac-operator: every command a developer or CI needs.
#   make test   install/build what is missing, then lint and run every test
#   make controlplane   build etcd, kube-apiserver, kube-controller-manager, kubectl from source

SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
GO ?= go

# Builds that outlive a checkout (CI points this at a cache in $HOME).
OKTA_RBAC_CACHE ?= $(CURDIR)/.build

# The Go modules that share Kubernetes, gRPC and OpenTelemetry (the control plane, the
# node's Kubernetes and containerd, Argo CD's health, Helm, kstatus, promtool, the PromQL
# checker) are built in one Go workspace: one build list, so that every package they have
# in common is compiled once, by one Go (the workspace's toolchain line; the go command
# fetches it from the module proxy once). Their builds are stored by a hash that includes
# every member's go.mod, since each can move the versions of all. The other modules are
# built alone, with the same Go (the standard library is then compiled once).
GO_WORKSPACE := crates/testenv/gowork/go.work
GO_WORKSPACE_MEMBERS := $(shell awk '/^use \(/ {u=1; next} u && /^\)/ {u=0} u {print $$1}' $(GO_WORKSPACE) | sed 's|^\.\./||')
GO_WORKSPACE_HASH := $(shell cat $(GO_WORKSPACE) $(GO_WORKSPACE).sum $(foreach m,$(GO_WORKSPACE_MEMBERS),crates/testenv/$(m)/go.mod crates/testenv/$(m)/go.sum) | sha256sum | cut -c1-16)
GO_TOOLCHAIN := $(shell awk '$$1 == "toolchain" {print $$2}' $(GO_WORKSPACE))
IN_GO_WORKSPACE := GOWORK=$(CURDIR)/$(GO_WORKSPACE) GOTOOLCHAIN=$(GO_TOOLCHAIN)
GO_ALONE := GOWORK=off GOTOOLCHAIN=$(GO_TOOLCHAIN)
go_env = $(if $(filter $(1),$(GO_WORKSPACE_MEMBERS)),$(IN_GO_WORKSPACE),$(GO_ALONE))
go_env_hash = $(if $(filter $(1),$(GO_WORKSPACE_MEMBERS)),$(GO_WORKSPACE_HASH))
CONTROLPLANE_MODULE := crates/testenv/controlplane
CONTROLPLANE_SOURCES := $(CONTROLPLANE_MODULE)/go.mod $(CONTROLPLANE_MODULE)/go.sum $(sort $(wildcard $(CONTROLPLANE_MODULE)/cmd/*/main.go))
KUBERNETES_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" {print $$2}' $(CONTROLPLANE_MODULE)/go.mod)
KUBERNETES_MINOR := $(word 2,$(subst ., ,$(KUBERNETES_VERSION)))
# Stamped like Kubernetes' own release build, so /version and version-skew checks are real.
CONTROLPLANE_LDFLAGS := -s -w $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(pkg).gitVersion=$(KUBERNETES_VERSION) -X $(pkg).gitMajor=1 -X $(pkg).gitMinor=$(KUBERNETES_MINOR) \
	-X $(pkg).gitTreeState=clean -X $(pkg).buildDate=1970-01-01T00:00:00Z)
# Binaries are stored by the hash of their sources and link flags: rebuilt exactly when
# either changes, and a cached build is reused by any checkout.
CONTROLPLANE_HASH := $(shell (cat $(CONTROLPLANE_SOURCES); echo '$(CONTROLPLANE_LDFLAGS) $(GO_WORKSPACE_HASH)') | sha256sum | cut -c1-16)
CONTROLPLANE_BUILD := $(OKTA_RBAC_CACHE)/controlplane/$(CONTROLPLANE_HASH)
# The stable path the Rust launcher looks in (a link to the current build).
CONTROLPLANE_BIN := $(CURDIR)/.build/controlplane/bin
export OKTA_RBAC_CONTROLPLANE_BIN := $(CONTROLPLANE_BIN)

# The test node (make node): kubelet, kube-proxy and kube-scheduler from the control
# plane's Kubernetes release, containerd 2 and the standard CNI plugins, each Go module
# built into a directory named by the hash of its files, every binary linked from
# .build/node/bin; and the pause image, compiled from the C source in the Kubernetes
# module and packed by buildah, imported into the node's containerd by the launcher.
NODE_DIR := crates/testenv/node
NODE_MODULES := kubernetes containerd cni
NODE_BIN := $(CURDIR)/.build/node/bin
export OKTA_RBAC_NODE_BIN := $(NODE_BIN)
node_hash = $(shell (cat $(NODE_DIR)/$(1)/go.mod $(NODE_DIR)/$(1)/go.sum $(sort $(shell find $(NODE_DIR)/$(1) -name '*.go')); echo '$(GO_TOOLCHAIN) $(call go_env_hash,node/$(1))') | sha256sum | cut -c1-16)
PAUSE_IMAGE := registry.k8s.io/pause:3.10.1

# Tools of other ecosystems the tests drive (kstatus, Argo CD's health evaluation, Helm),
# each built from a small Go module of its own, stored by the hash of that module's files.
TOOLS_DIR := crates/testenv/tools
TOOLS := $(notdir $(wildcard $(TOOLS_DIR)/*))
TOOLS_BIN := $(CURDIR)/.build/tools/bin
export OKTA_RBAC_TOOLS_BIN := $(TOOLS_BIN)
tool_hash = $(shell (cat $(TOOLS_DIR)/$(1)/go.mod $(TOOLS_DIR)/$(1)/go.sum $(sort $(wildcard $(TOOLS_DIR)/$(1)/*.go)); echo '$(GO_TOOLCHAIN) $(call go_env_hash,tools/$(1)) $($(1)_TAGS)') | sha256sum | cut -c1-16)
# promtool without Prometheus' service discovery plugins for clouds (AWS, Azure, GCE, ...):
# rules are checked and tested by the same code, and a third of its packages go.
promtool_TAGS := remove_all_sd

# The CRDs of the projects whose kinds the chart and the kustomize components render
# (cert-manager, Gateway API, the Prometheus Operator), taken from those projects' Go
# modules, pinned with their checksums in THIRD_PARTY_CRDS_MODULE, as its crds.txt lists
# them; stored by the hash of that module's files, linked from .build/third-party-crds.
THIRD_PARTY_CRDS_MODULE := crates/testenv/third-party-crds
THIRD_PARTY_CRDS_BUILD := $(OKTA_RBAC_CACHE)/third-party-crds/$(shell cat $(addprefix $(THIRD_PARTY_CRDS_MODULE)/,go.mod go.sum crds.txt) | sha256sum | cut -c1-16)
THIRD_PARTY_CRDS := $(CURDIR)/.build/third-party-crds
export OKTA_RBAC_THIRD_PARTY_CRDS := $(THIRD_PARTY_CRDS)

# Peer operators the benchmark runs beside ours, built from their release source in
# PEERS_DIR (the shared peers directory beside the checkout), never copied into this
# repository; stored by the hash of the tarball, linked from .build/peers/bin with the
# peer's CRD.
PEERS_DIR ?= $(abspath $(CURDIR)/../shared/peers)
RBAC_MANAGER_TARBALL := $(PEERS_DIR)/rbac-manager-v1.10.0.tar.gz
PEERS_BIN := $(CURDIR)/.build/peers/bin
export OKTA_RBAC_PEERS_BIN := $(PEERS_BIN)

# Okta's official Python SDK and its test tools, in a venv of their own.
SDK_VENV := $(OKTA_RBAC_CACHE)/sdk-venv
SDK_TESTS := crates/okta-sim/tests/sdk
SDK_REQUIREMENTS := $(SDK_TESTS)/requirements.txt
SDK_VENV_STAMP := $(SDK_VENV)/.installed-$(shell sha256sum $(SDK_REQUIREMENTS) | cut -c1-12)

# The documentation site's tools (MkDocs, Material), pinned, in a venv of their own.
DOCS_VENV := $(OKTA_RBAC_CACHE)/docs-venv
DOCS_REQUIREMENTS := docs/requirements.txt
DOCS_VENV_STAMP := $(DOCS_VENV)/.installed-$(shell sha256sum $(DOCS_REQUIREMENTS) | cut -c1-12)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# The binary every test, the demo and the benchmark run as the operator (a debug build;
# make bench overrides it with the release build).
export OKTA_RBAC_OPERATOR_BIN := $(TARGET_DIR)/debug/okta-rbac-operator

# The shipped binary carries the operator alone: none of these may enter its dependency
# tree (the local Okta, the test world, the demo, and what only they need).
NOT_IN_OPERATOR := okta-sim okta-rbac-testenv okta-rbac-pki okta-rbac-demo axum-server rcgen tempfile plotters

.PHONY: help stage-times builds sdk-venv demo controlplane tools third-party-crds build crd lint lint-static test-build operator-deps fmt test rust-test sdk-test fuzz bench bench-smoke clean image deploy undeploy packages node peers docs docs-reference

help:
	@echo "make help          this list"
	@echo "make demo          the whole thing locally: local Okta, control plane with OIDC, operator, samples"
	@echo "                   (DEMO_ARGS=--once to exit, DEMO_ARGS=\"--prefix oidc:\" for OIDC prefixes)"
	@echo "make test          lint and run every test (builds the control plane, tools, node and image if needed)"
	@echo "make lint          rustfmt, clippy -D warnings, operator-deps, actionlint, the krew manifest, the chart's"
	@echo "                   README, the release notes, and the docs site built with --strict"
	@echo "make rust-test     the Rust unit and integration tests of every crate, TEST_JOBS (3) executables at a time"
	@echo "make stage-times   the wall time of each stage of the last make test, and its slowest test executables"
	@echo "make sdk-test      Okta's official Python SDK against the local Okta"
	@echo "make fuzz          generated OktaGroupBindings through the apiserver, more than make test sends"
	@echo "                   (FUZZ_CASES=3000, FUZZ_SEED=the date)"
	@echo "make bench         the operator, the true limit, the floor and rbac-manager at 100, 1000, 5000 objects (SIZES=...)"
	@echo "                   and the large-cluster cases (LARGE_CASES=...); BENCH_NO_PEER=1 without rbac-manager; writes docs/bench/"
	@echo "make bench-smoke   the benchmark at 20 objects with the debug build, no peer, no large cases (part of make test)"
	@echo "make docs          the documentation site into .build/site"
	@echo "make docs-reference  rewrite the generated docs: API, configuration and metrics reference, the chart's README"
	@echo "make controlplane  build etcd, kube-apiserver, kube-controller-manager, kubectl ($(CONTROLPLANE_BUILD))"
	@echo "make tools         build the Go tools the tests drive: $(TOOLS)"
	@echo "make third-party-crds  take the CRDs of cert-manager, Gateway API and the Prometheus Operator from their Go modules"
	@echo "make node          build the test node: kubelet, kube-proxy, kube-scheduler, containerd, CNI plugins, pause"
	@echo "make peers         build rbac-manager v1.10.0 from PEERS_DIR (the benchmark's peer)"
	@echo "make packages      install the Debian packages the image and the node need (buildah, runc, iptables)"
	@echo "make build         build the operator and the kubectl plugin kubectl-okta_rbac (release)"
	@echo "make image         the operator's image, built offline with buildah from the static binary (IMG=...)"
	@echo "make crd           regenerate crds/ and the chart's crds/ from the Rust types"
	@echo "make deploy        kubectl apply -k config/default with IMG as the image"
	@echo "make undeploy      remove what make deploy installed, the CRD and every OktaGroupBinding included"
	@echo "make operator-deps check that the shipped operator depends on none of the test world's crates"
	@echo "make fmt           format the Rust code"
	@echo "make clean         remove .build, target and dist"

controlplane: $(CONTROLPLANE_BUILD)/.built
	@mkdir -p $(dir $(CONTROLPLANE_BIN))
	@ln -sfn $(CONTROLPLANE_BUILD) $(CONTROLPLANE_BIN)

$(CONTROLPLANE_BUILD)/.built:
	@command -v $(GO) >/dev/null || { echo "Go 1.26 or later is needed to build the control plane" >&2; exit 1; }
	@echo ">> building the control plane from k8s.io/kubernetes into $(CONTROLPLANE_BUILD)"
	@echo ">> a cold build takes about 14 minutes on 2 cores; cached builds take seconds"
	@mkdir -p $(CONTROLPLANE_BUILD)
	@cd $(CONTROLPLANE_MODULE) && $(call go_env,controlplane) CGO_ENABLED=0 $(GO) build -v -trimpath -ldflags='$(CONTROLPLANE_LDFLAGS)' \
		-o $(CONTROLPLANE_BUILD)/ ./cmd/... 2>&1 | tee $(CONTROLPLANE_BUILD)/build.log \
		| awk '{n++} n % 250 == 0 {printf ">> %d packages compiled\n", n; fflush()}'; \
		status=$${PIPESTATUS[0]}; \
		if [ $$status -ne 0 ]; then tail -n 40 $(CONTROLPLANE_BUILD)/build.log >&2; exit $$status; fi
	@touch $@
	@echo ">> control plane ready: $$(ls $(CONTROLPLANE_BUILD) | grep -v build.log | tr '\n' ' ')"

# One rule per tool: a cached build, linked from .build/tools/bin/<tool>. A module whose
# go.mod names a `tool` is built from that package; otherwise from the module itself.
define tool_rule
$(1)_BUILD := $(OKTA_RBAC_CACHE)/tools/$(1)/$$(call tool_hash,$(1))
$$($(1)_BUILD)/$(1):
	@command -v $(GO) >/dev/null || { echo "Go 1.26 or later is needed to build $(1)" >&2; exit 1; }
	@echo ">> building $(1) from its Go module $(TOOLS_DIR)/$(1)"
	@mkdir -p $$(@D)
	cd $(TOOLS_DIR)/$(1) && $(call go_env,tools/$(1)) \
	CGO_ENABLED=0 $(GO) build -trimpath $(if $($(1)_TAGS),-tags $($(1)_TAGS)) -ldflags='-s -w' -o $$@ \
		$$$$(awk '$$$$1 == "tool" {print $$$$2}' go.mod | grep . || echo .)
tool-$(1): $$($(1)_BUILD)/$(1)
	@mkdir -p $(TOOLS_BIN)
	@ln -sfn $$($(1)_BUILD)/$(1) $(TOOLS_BIN)/$(1)
endef
$(foreach tool,$(TOOLS),$(eval $(call tool_rule,$(tool))))

tools: $(addprefix tool-,$(TOOLS))

$(THIRD_PARTY_CRDS_BUILD)/.taken:
	@echo ">> taking the CRDs of cert-manager, Gateway API and the Prometheus Operator from their Go modules"
	@rm -rf $(@D) && mkdir -p $(@D)
	@cd $(THIRD_PARTY_CRDS_MODULE) && grep -v '^#' crds.txt | grep . | while read -r module file; do \
		dir=$$($(GO_ALONE) GOFLAGS=-mod=readonly $(GO) mod download -json $$module | awk -F'"' '/"Dir"/ {print $$4}') \
			&& test -n "$$dir" && cp "$$dir/$$file" $(@D)/ || { echo "no $$file in $$module" >&2; exit 1; }; \
	done
	@touch $@

third-party-crds: $(THIRD_PARTY_CRDS_BUILD)/.taken
	@mkdir -p $(dir $(THIRD_PARTY_CRDS))
	@ln -sfn $(THIRD_PARTY_CRDS_BUILD) $(THIRD_PARTY_CRDS)

define node_rule
$(1)_NODE_BUILD := $(OKTA_RBAC_CACHE)/node/$(1)/$$(call node_hash,$(1))
$$($(1)_NODE_BUILD)/.built:
	@echo ">> building the node's $(1) from its Go module $(NODE_DIR)/$(1) (a cold build takes minutes)"
	@mkdir -p $$(@D)
	cd $(NODE_DIR)/$(1) && $(call go_env,node/$(1)) CGO_ENABLED=0 $(GO) build -trimpath -ldflags='$(CONTROLPLANE_LDFLAGS)' -o $$(@D)/ \
		$$$$(awk '$$$$1 == "tool" && $$$$2 != "(" {print $$$$2} /^tool \(/ {t=1; next} t && /^\)/ {t=0} t {print $$$$1}' go.mod | grep . || echo ./cmd/...)
	@touch $$@
node-$(1): $$($(1)_NODE_BUILD)/.built
	@mkdir -p $(NODE_BIN)
	@for b in $$(wildcard $$($(1)_NODE_BUILD)/*); do ln -sfn $$$$b $(NODE_BIN)/; done
endef
$(foreach module,$(NODE_MODULES),$(eval $(call node_rule,$(module))))

PAUSE_BUILD := $(OKTA_RBAC_CACHE)/node/pause/$(shell echo '$(KUBERNETES_VERSION) $(PAUSE_IMAGE)' | sha256sum | cut -c1-16)
$(PAUSE_BUILD)/pause.tar: | packages
	@echo ">> building the pause image $(PAUSE_IMAGE) from build/pause/linux/pause.c of k8s.io/kubernetes $(KUBERNETES_VERSION)"
	@mkdir -p $(@D)/context
	source=$$(cd $(NODE_DIR)/kubernetes && $(call go_env,node/kubernetes) $(GO) mod download -json k8s.io/kubernetes | awk -F'"' '/"Dir"/ {print $$4}'); \
	gcc -Os -static -o $(@D)/context/pause $$source/build/pause/linux/pause.c
	printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > $(@D)/context/Containerfile
	buildah --storage-driver vfs bud --isolation chroot -t $(PAUSE_IMAGE) -f $(@D)/context/Containerfile $(@D)/context
	buildah --storage-driver vfs push $(PAUSE_IMAGE) docker-archive:$@.tmp:$(PAUSE_IMAGE)
	mv $@.tmp $@

node: packages $(addprefix node-,$(NODE_MODULES)) $(PAUSE_BUILD)/pause.tar
	@ln -sfn $(PAUSE_BUILD)/pause.tar $(NODE_BIN)/pause.tar
	@echo ">> node ready: $$(ls $(NODE_BIN) | tr '\n' ' ')"

demo:
	@test -e $(CONTROLPLANE_BUILD)/.built || echo ">> first run: the control plane is compiled from the Kubernetes source while cargo builds the operator (the control plane alone takes about 14 minutes on 2 cores; cached afterwards)"
	@# Side by side: each build alone leaves a core idle for minutes (downloads, links).
	@$(MAKE) --no-print-directory controlplane & controlplane=$$!; \
	echo ">> building the operator and the demo (cargo shows its progress)"; \
	$(CARGO) build --locked -p okta-rbac-operator -p okta-rbac-demo -p okta-rbac-kubectl-plugin --bin okta-rbac-operator --bin okta-rbac-demo --bin kubectl-okta_rbac; \
	cargo=$$?; wait $$controlplane && [ $$cargo -eq 0 ]
	$(TARGET_DIR)/debug/okta-rbac-demo $(DEMO_ARGS)

build:
	$(CARGO) build --locked --release -p okta-rbac-operator -p okta-rbac-kubectl-plugin

# The CRD lives twice: in crds/ (kustomize) and in the chart's crds/ (Helm installs CRDs
# only from there); both are generated, and a test fails when either is stale.
crd:
	$(CARGO) run --locked --quiet -p okta-rbac-operator -- crd > crds/oktagroupbindings.oktarbac.io.yaml
	cp crds/oktagroupbindings.oktarbac.io.yaml charts/okta-rbac-operator/crds/

fmt:
	$(CARGO) fmt

lint: lint-static
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# What lint checks besides clippy. make test runs clippy inside its build instead (see
# LINTED_BUILD), rather than compiling every crate once more just to check it.
lint-static: operator-deps tool-actionlint tool-validate-krew-manifest tool-helm-docs $(DOCS_VENV_STAMP)
	$(CARGO) fmt --check
	$(TOOLS_BIN)/actionlint .github/workflows/*.yml
	@# The plugin's krew manifest, rendered as the release workflow renders it, checked by krew.
	@dir=$$(mktemp -d) && for arch in amd64 arm64; do echo lint > $$dir/kubectl-okta_rbac-linux-$$arch.tar.gz; done && \
		crates/plugin/krew/render.sh v$(VERSION) $$dir > $$dir/okta-rbac.yaml && \
		{ $(TOOLS_BIN)/validate-krew-manifest -manifest $$dir/okta-rbac.yaml -skip-install > $$dir/lint.log 2>&1 \
			|| { cat $$dir/lint.log; exit 1; }; } && \
		echo ">> the krew manifest passes validate-krew-manifest" && rm -rf $$dir
	@# The chart's README is what helm-docs writes from values.yaml.
	@dir=$$(mktemp -d) && cp -r charts/okta-rbac-operator $$dir/ && \
		(cd $$dir && $(TOOLS_BIN)/helm-docs --chart-search-root . --log-level warning) && \
		{ diff -u charts/okta-rbac-operator/README.md $$dir/okta-rbac-operator/README.md \
			|| { echo "charts/okta-rbac-operator/README.md is stale: run make docs-reference" >&2; exit 1; }; } && \
		rm -rf $$dir && echo ">> the chart's README is what helm-docs writes"
	@# The release notes of the next release can be extracted from CHANGELOG.md.
	@.github/scripts/release-notes.sh Unreleased > /dev/null && echo ">> CHANGELOG.md has its Unreleased section"
	@# Every make target the docs name is one make help lists.
	@listed=$$($(MAKE) --no-print-directory help | grep -o '^make [a-z-]*' | sort -u); \
	for named in $$(grep -rhoE '`make [a-z][a-z-]*' README.md docs | cut -c2- | sort -u | tr ' ' '_'); do \
		grep -qx "$${named/_/ }" <<<"$$listed" || { echo "the docs name '$${named/_/ }', which make help does not list" >&2; exit 1; }; \
	done; echo ">> every make target the docs name is in make help"
	@# make says nothing on stderr in a checkout without the peers' directory.
	@noise=$$($(MAKE) --no-print-directory help PEERS_DIR=/nonexistent 2>&1 >/dev/null); \
		test -z "$$noise" || { echo "make help wrote to stderr without the peers: $$noise" >&2; exit 1; }
	@# The README's links into the repository lead to files that exist.
	@for target in $$(grep -oE '\]\([^)#]+' README.md | cut -c3- | grep -v '^https\?://'); do \
		test -e "$$target" || { echo "README.md links to $$target, which does not exist" >&2; exit 1; }; \
	done; echo ">> the README's links resolve"
	@# The docs site builds with every internal link and anchor resolved.
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict --quiet --site-dir $(CURDIR)/.build/site

$(DOCS_VENV_STAMP): $(DOCS_REQUIREMENTS)
	@command -v python3 >/dev/null || { echo "Python 3 is needed for the docs site" >&2; exit 1; }
	rm -rf $(DOCS_VENV)
	python3 -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(DOCS_REQUIREMENTS)
	@touch $@

docs: $(DOCS_VENV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict --site-dir $(CURDIR)/.build/site
	@echo ">> the site is in .build/site (open .build/site/index.html)"

# The pages written from the code and values.yaml, rewritten (tests fail when they are stale).
docs-reference: tool-helm-docs
	OKTA_RBAC_UPDATE_DOCS=1 $(CARGO) test --locked -p okta-rbac-api --test api_reference
	OKTA_RBAC_UPDATE_DOCS=1 $(CARGO) test --locked -p okta-rbac-operator --test reference_docs
	cd charts && $(TOOLS_BIN)/helm-docs --chart-search-root . --log-level warning

operator-deps:
	@tree=$$($(CARGO) tree --locked -p okta-rbac-operator -e normal --prefix none); \
	for crate in $(NOT_IN_OPERATOR); do \
		if grep -q "^$$crate v" <<<"$$tree"; then \
			echo "okta-rbac-operator must not depend on $$crate: see cargo tree -p okta-rbac-operator -e normal -i $$crate" >&2; \
			exit 1; \
		fi; \
	done; \
	echo ">> the operator's dependency tree holds none of: $(NOT_IN_OPERATOR)"

# make test runs its stages one after another, each timed; the table of their wall times
# and the slowest test executables ends every run (and a failed one), so that a
# regression shows in every CI log. The first stage, builds, runs two lanes side by side:
# the Go lane (lint-static's tools, the control plane, the tools, the node) and the Rust
# lane (the image, the test build). Each alone leaves a core idle for minutes (module and
# crate downloads, linking one binary after another), and neither needs the other.
GO_LANE := lint-static sdk-venv controlplane tools third-party-crds node
RUST_LANE := image test-build
TEST_STAGES := builds rust-test sdk-test bench-smoke
STAGE_TIMES := $(CURDIR)/.build/stage-times

# $(call timed,STAGE,LANE): runs `make STAGE`, appends its wall time to STAGE_TIMES.
timed = start=$$(date +%s); $(MAKE) --no-print-directory $(1); status=$$?; \
	echo "$(1) $$(( $$(date +%s) - start )) $(2)" >> $(STAGE_TIMES); (exit $$status)

test:
	@mkdir -p $(dir $(STAGE_TIMES)) && : > $(STAGE_TIMES)
	@for stage in $(TEST_STAGES); do \
		$(call timed,$$stage,); status=$$?; \
		if [ $$status -ne 0 ]; then \
			$(MAKE) --no-print-directory stage-times; \
			echo "make test: the $$stage stage failed" >&2; exit $$status; \
		fi; \
	done; \
	$(MAKE) --no-print-directory stage-times

# The two lanes of make test's builds; the Debian packages first, as both need them and
# apt takes one client at a time. Each lane's lines are prefixed with its name.
builds: packages
	@( set -o pipefail; \
	  { for stage in $(GO_LANE); do $(call timed,$$stage,go) || exit $$?; done; } 2>&1 | sed -u 's/^/[go] /' ) & go=$$!; \
	( set -o pipefail; \
	  { for stage in $(RUST_LANE); do $(call timed,$$stage,rust) || exit $$?; done; } 2>&1 | sed -u 's/^/[rust] /' ); rust=$$?; \
	wait $$go; go=$$?; \
	if [ $$go -ne 0 ]; then echo "make test: the Go lane failed" >&2; fi; \
	if [ $$rust -ne 0 ]; then echo "make test: the Rust lane failed" >&2; fi; \
	[ $$go -eq 0 ] && [ $$rust -eq 0 ]

stage-times:
	@echo; echo "stage              wall"; \
	awk '$$3 == "" { printf "%-16s %5dm%02ds\n", $$1, $$2 / 60, $$2 % 60; total += $$2 } \
		$$3 != "" { printf "  %-14s %5dm%02ds  (%s lane)\n", $$1, $$2 / 60, $$2 % 60, $$3 } \
		END { printf "%-16s %5dm%02ds\n", "total", total / 60, total % 60 }' $(STAGE_TIMES)
	@if [ -f $(TEST_LOGS)/table ]; then echo; echo "the slowest test executables:"; head -n 9 $(TEST_LOGS)/table; fi

# make test's build is its clippy run too: clippy's driver compiles the workspace's own
# crates (every lint denied, as `cargo clippy --all-targets -- -D warnings` does) in the
# build the tests run, and dependencies are compiled by rustc once, as always. Every cargo
# command of the test stages runs with it, so that none rebuilds what another built.
CLIPPY_DRIVER := $(shell rustc --print sysroot 2>/dev/null)/bin/clippy-driver
LINTED_BUILD := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

# Every binary and every test executable, in one build: the demo's tests run the operator
# binary from beside them. The binaries are built with the tests (--tests), so that they
# get the same features of every dependency: built alone, they would leave out what the
# tests' dev-dependencies turn on (tokio's test-util), and tokio and everything above it
# would be compiled twice. The second command builds nothing; it lists the executables.
WORKSPACE_BUILD := $(LINTED_BUILD) $(CARGO) build --locked --workspace --bins --tests
test-build:
	$(WORKSPACE_BUILD)
	$(LINTED_BUILD) $(CARGO) test --locked --workspace --no-run --message-format=json-render-diagnostics \
		> $(TARGET_DIR)/test-executables.json

# The test executables run side by side (TEST_JOBS at a time): most of them wait on
# control planes and timers. The node and the image are for the tests that run the
# operator in Pods (on_node.rs).
TEST_JOBS ?= 3
TEST_LOGS := $(TARGET_DIR)/test-logs
rust-test: controlplane tools third-party-crds node image test-build
	$(LINTED_BUILD) $(CARGO) test --locked --workspace --doc
	@mkdir -p $(TEST_LOGS) && { test -f $(TEST_LOGS)/times || cp .ci/test-times $(TEST_LOGS)/times; }
	$(TARGET_DIR)/debug/okta-rbac-test-run --jobs $(TEST_JOBS) --logs $(TEST_LOGS) \
		< $(TARGET_DIR)/test-executables.json

# The fuzz test of make test, with more objects and a seed of the day (the seed is
# printed; FUZZ_SEED=N reproduces a run).
FUZZ_CASES ?= 3000
FUZZ_SEED ?= $(shell date -u +%Y%m%d)
fuzz: controlplane
	$(WORKSPACE_BUILD)
	FUZZ_CASES=$(FUZZ_CASES) FUZZ_SEED=$(FUZZ_SEED) $(LINTED_BUILD) $(CARGO) test --locked -p okta-rbac-operator --test fuzz -- --nocapture

$(SDK_VENV_STAMP): $(SDK_REQUIREMENTS)
	@command -v python3 >/dev/null || { echo "Python 3 is needed for the SDK tests" >&2; exit 1; }
	rm -rf $(SDK_VENV)
	python3 -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(SDK_REQUIREMENTS)
	@touch $@

sdk-venv: $(SDK_VENV_STAMP)

sdk-test: $(SDK_VENV_STAMP)
	@# The workspace's binaries as test-build builds them: a build of one package would
	@# select other features of shared crates, and compile them once more.
	$(WORKSPACE_BUILD)
	cd $(SDK_TESTS) && OKTA_SIM_BIN=$(TARGET_DIR)/debug/okta-sim \
		$(SDK_VENV)/bin/python -m pytest -q -p no:cacheprovider

# The tarball is hashed when the target runs, not when make reads this file: a checkout
# without the peers directory runs every other target without a word about it.
peers:
	@test -f $(RBAC_MANAGER_TARBALL) || { echo "$(RBAC_MANAGER_TARBALL) is missing: set PEERS_DIR to the directory that holds it, or run the benchmark without the peer (BENCH_NO_PEER=1)" >&2; exit 1; }
	@build=$(OKTA_RBAC_CACHE)/peers/rbac-manager/$$(sha256sum < $(RBAC_MANAGER_TARBALL) | cut -c1-16); \
	if [ ! -x $$build/rbac-manager ]; then \
		echo ">> building rbac-manager v1.10.0 from $(RBAC_MANAGER_TARBALL)"; \
		rm -rf $$build/src && mkdir -p $$build/src && \
		tar xzf $(RBAC_MANAGER_TARBALL) -C $$build/src --strip-components=1 && \
		(cd $$build/src && CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $$build/rbac-manager ./cmd/manager) || exit 1; \
	fi; \
	mkdir -p $(PEERS_BIN) && \
	ln -sfn $$build/rbac-manager $(PEERS_BIN)/rbac-manager && \
	ln -sfn $$build/src/deploy/2_crd.yaml $(PEERS_BIN)/rbac-manager-crd.yaml

# Convergence time, Okta requests, apiserver writes, memory and CPU of the operator next
# to the true limit (a client creating the same bindings directly at its best
# concurrency) and to rbac-manager on the same workload. SIZES=100,1000,5000.
bench: controlplane $(if $(BENCH_NO_PEER),,peers)
	$(CARGO) build --locked --release -p okta-rbac-operator -p okta-rbac-demo --bin okta-rbac-operator --bin okta-rbac-bench
	OKTA_RBAC_OPERATOR_BIN=$(TARGET_DIR)/release/okta-rbac-operator $(TARGET_DIR)/release/okta-rbac-bench

# The benchmark at a quick size, with the debug builds rust-test made, no peer and no
# large cases, its results in .build/bench-smoke: proves that make bench runs.
bench-smoke: controlplane
	SIZES=20 BENCH_NO_PEER=1 BENCH_RESYNC_SECONDS=10 LARGE_CASES= AUTHORIZER_RATE=200 AUTHORIZER_SECONDS=2 REVOCATION_ROUNDS=1 REVOCATION_GIVE_UP_SECONDS=5 \
		SOURCES_CHANGES=1 SOURCES_GROUPS=8 SOURCES_QUIET_SECONDS=5 SOURCES_RESYNC_SECONDS=5 SOURCES_SETTLE_SECONDS=0 \
		CLUSTERS=2 CLUSTER_GROUPS=3 CLUSTER_CHANGES=2 CLUSTER_QUIET_SECONDS=5 \
		BENCH_OUT=$(CURDIR)/.build/bench-smoke $(TARGET_DIR)/debug/okta-rbac-bench

# Debian packages the image and the node need: buildah builds images offline, runc runs
# containers, iptables is kube-proxy's. Installed once, when missing.
DEBIAN_PACKAGES := buildah runc iptables
packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo ">> installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The image: the release build of the operator, linked statically, and the machine's CA
# bundle, put into dist/ where the Dockerfile (the release workflow's too) takes them.
VERSION := $(shell awk -F'"' '/^version = / {print $$2; exit}' Cargo.toml)
IMG ?= ghcr.io/okta-rbac-operator/okta-rbac-operator:$(VERSION)
IMAGE_ARCHIVE := $(CURDIR)/dist/okta-rbac-operator-image.tar
HOST_TARGET := $(shell rustc -vV | awk '/^host:/ {print $$2}')
ARCH := $(if $(filter aarch64%,$(HOST_TARGET)),arm64,amd64)

# Cargo decides whether the binary is new; it is copied (and the image built again) only
# when it is, or when the CA bundle, the Dockerfile or IMG changed.
dist/okta-rbac-operator-linux-$(ARCH): FORCE
	RUSTFLAGS='-C target-feature=+crt-static' $(CARGO) build --locked --release -p okta-rbac-operator --target $(HOST_TARGET)
	@mkdir -p dist
	@cmp -s $(TARGET_DIR)/$(HOST_TARGET)/release/okta-rbac-operator $@ \
		|| cp $(TARGET_DIR)/$(HOST_TARGET)/release/okta-rbac-operator $@

dist/ca-certificates.crt:
	@mkdir -p dist
	cp /etc/ssl/certs/ca-certificates.crt $@

dist/image-name: FORCE
	@mkdir -p dist
	@echo '$(IMG)' | cmp -s - $@ || echo '$(IMG)' > $@

$(IMAGE_ARCHIVE): dist/okta-rbac-operator-linux-$(ARCH) dist/ca-certificates.crt Dockerfile dist/image-name | packages
	@command -v buildah >/dev/null || { echo "buildah is needed (apt-get install buildah)" >&2; exit 1; }
	buildah --storage-driver vfs bud --isolation chroot --build-arg TARGETARCH=$(ARCH) -t $(IMG) -f Dockerfile .
	rm -f $@
	buildah --storage-driver vfs push $(IMG) docker-archive:$@:$(IMG)
	@echo ">> $(IMG): $$(du -h dist/okta-rbac-operator-linux-$(ARCH) | cut -f1) binary; archive $@"

image: $(IMAGE_ARCHIVE)

KUBECTL ?= kubectl

# Installs config/default with IMG as the operator's image into the cluster of the
# current kubeconfig (the Secret okta-credentials must exist, see docs/install.md).
deploy:
	@mkdir -p dist/deploy
	printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../config/default]\nimages:\n  - name: ghcr.io/okta-rbac-operator/okta-rbac-operator\n    newName: %s\n    newTag: "%s"\n' \
		"$(firstword $(subst :, ,$(IMG)))" "$(lastword $(subst :, ,$(IMG)))" > dist/deploy/kustomization.yaml
	$(KUBECTL) apply -k dist/deploy

# Removes what deploy installed, the CRD included: every OktaGroupBinding and its bindings
# go with it (docs/operations.md says how to keep them).
undeploy:
	$(KUBECTL) delete --ignore-not-found -k config/default

FORCE:

clean:
	rm -rf .build target dist
