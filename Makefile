# Every command a user or CI needs. `make demo` and `make test` set up what they
# need themselves on a fresh machine: Go, Python 3.13 with venv, and network access to
# the Go module proxy and PyPI are all they assume; `make test` also runs the consumer
# examples, so it needs Node.js 20 with npm and the npm registry too, and the interop
# tests' Spring Authorization Server and Nimbus OAuth 2.0 SDK, so Java 17 with Maven
# and Maven Central.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO           ?= go
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
LAUNCHER     := localstack/launcher
GOTEST_FLAGS ?= -count=1

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

## ---- checks -----------------------------------------------------------------

.PHONY: test
test: lint unit sam-check iam-check integration ## everything CI runs: lint, unit, SAM checks, integration and end-to-end against LocalStack

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@echo "lint: gofmt, go vet, staticcheck"
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags lambda.norpc ./functions/refresher
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags integration ./...
	$(GO) run $(STATICCHECK) -tags lambda.norpc ./functions/refresher
	@# ./... from the root does not descend into a nested module: each has its own pass.
	@for m in $(TOKENS_MODULE) $(CONSUMER_GO) $(FOSITE_MODULE); do \
	  echo "lint: $$m, its own module"; \
	  (cd $$m && $(GO) vet ./... && $(GO) vet -tags integration ./... && \
	    $(GO) run $(STATICCHECK) ./... && $(GO) run $(STATICCHECK) -tags integration ./...); done
	$(MAKE) --no-print-directory tokens-module

# pkg/tokens is the module consumers require, its tags prefixed with its directory. Its graph must
# hold none of the function's own dependencies: a consumer that requires it must not
# inherit the Lambda runtime, Secrets Manager, SQS, YAML or backoff, nor be upgraded
# whenever the function's dependencies are.
TOKENS_MODULE    := pkg/tokens
CONSUMER_GO      := examples/consumer-go
FOSITE_MODULE    := scripts/authservers/fosite
FUNCTION_ONLY_RE := ^(github\.com/aws/aws-lambda-go|github\.com/aws/aws-sdk-go-v2/service/(secretsmanager|sqs|cloudwatchlogs|eventbridge|kms|lambda)|github\.com/cenkalti/backoff|go\.yaml\.in/yaml|gopkg\.in/yaml|github\.com/token-refresher/token-refresher)

.PHONY: tokens-module
tokens-module: ## check pkg/tokens' own module (tidy, a go directive without a patch release, none of the function's dependencies in its graph) and the example consumer's (tidy)
	@echo "tokens-module: go.mod tidy, module graph free of the function's dependencies"
	cd $(TOKENS_MODULE) && $(GO) mod tidy -diff
	@directive=$$(cd $(TOKENS_MODULE) && $(GO) list -m -f '{{.GoVersion}}'); \
	  if [[ ! "$$directive" =~ ^1\.[0-9]+(\.0)?$$ ]]; then echo "tokens-module: go $$directive: consumers would need that patch release; want 1.N (or 1.N.0 where a dependency says so)" >&2; exit 1; fi
	@leaked=$$(cd $(TOKENS_MODULE) && $(GO) list -m all | tail -n +2 | grep -E '$(FUNCTION_ONLY_RE)' || true); \
	  if [ -n "$$leaked" ]; then echo "tokens-module: pkg/tokens' module graph holds the function's dependencies:" >&2; echo "$$leaked" >&2; exit 1; fi
	@# The example consumer Lambda is its own module too, as a consumer's function is.
	cd $(CONSUMER_GO) && $(GO) mod tidy -diff

.PHONY: unit
unit: ## unit tests, with the race detector; the function also as built for Lambda (tag lambda.norpc)
	$(GO) test -race $(GOTEST_FLAGS) ./...
	$(GO) test -race $(GOTEST_FLAGS) -tags lambda.norpc ./functions/refresher
	cd $(TOKENS_MODULE) && $(GO) test -race $(GOTEST_FLAGS) ./...

.PHONY: integration
integration: build examples-deps authservers-deps ## integration and end-to-end tests, the host-mode executor's tests and a deploy of the built stack, against a LocalStack the launcher starts and stops
	$(LAUNCHER) run -- bash -c '$(GO) test -tags integration $(GOTEST_FLAGS) -run Integration -p 1 -timeout 30m ./... && (cd $(TOKENS_MODULE) && $(GO) test -tags integration $(GOTEST_FLAGS) -run Integration -p 1 ./...) && scripts/sam-deploy-local'
	$(LAUNCHER) test

# The consumer examples' dependencies, pinned in their own files: Python's into a venv,
# Node's with `npm ci` from the committed lock file. Each is installed again only when
# its pins change.
EXAMPLES_PYTHON   ?= python3
EXAMPLES_VENV     := .venv/examples
EXAMPLES_PY_STAMP := $(EXAMPLES_VENV)/.installed
EXAMPLES_JS_STAMP := examples/node/node_modules/.installed

$(EXAMPLES_PY_STAMP): examples/python/requirements.txt
	@echo "examples-deps: installing the Python example's pinned dependencies into $(EXAMPLES_VENV)"
	@test -x $(EXAMPLES_VENV)/bin/python || $(EXAMPLES_PYTHON) -m venv $(EXAMPLES_VENV)
	@$(EXAMPLES_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off -q -r examples/python/requirements.txt
	@touch $@

$(EXAMPLES_JS_STAMP): examples/node/package.json examples/node/package-lock.json
	@echo "examples-deps: installing the Node.js example's locked dependencies (npm ci)"
	@command -v npm >/dev/null || { echo "examples-deps: npm not found: the Node.js example needs Node.js 20 or later with npm" >&2; exit 1; }
	cd examples/node && npm ci --no-audit --no-fund
	@touch $@

# The offline IAM evaluation (scripts/iam): its evaluator, @cloud-copilot/iam-simulate,
# and YAML parser come with `npm ci` from the committed lock file.
IAM_JS_STAMP := scripts/iam/node_modules/.installed
IAM_TOKENCTL := .cache/iam/tokenctl

$(IAM_JS_STAMP): scripts/iam/package.json scripts/iam/package-lock.json
	@echo "iam-check: installing the IAM evaluator's locked dependencies (npm ci)"
	@command -v npm >/dev/null || { echo "iam-check: npm not found: the IAM check needs Node.js 20 or later with npm" >&2; exit 1; }
	cd scripts/iam && npm ci --no-audit --no-fund
	@touch $@

.PHONY: iam-check
iam-check: $(IAM_JS_STAMP) ## evaluate every role and policy of the template, and tokenctl's per-consumer policy, with a real IAM policy evaluator, offline
	$(GO) build -o $(IAM_TOKENCTL) ./cmd/tokenctl
	TOKENCTL=$(abspath $(IAM_TOKENCTL)) node scripts/iam/check.mjs $(SAM_TEMPLATE)

# Real authorization servers for the interop tests (internal/authservers), each
# pinned in its own lock file under scripts/authservers/ and installed again only
# when its pins change.
AUTHSERVERS_OIDC_STAMP := scripts/authservers/oidc-provider/node_modules/.installed
AUTHSERVERS_VENV       := .venv/authservers
AUTHSERVERS_PY_STAMP   := $(AUTHSERVERS_VENV)/.installed
AUTHSERVERS_FOSITE     := .cache/authservers/fosite

# fosite is a Go library: a test-only binary, its own module so that none of its
# dependencies enter the function's graph.
$(AUTHSERVERS_FOSITE): scripts/authservers/fosite/go.mod scripts/authservers/fosite/go.sum scripts/authservers/fosite/main.go
	@echo "authservers-deps: building fosite (scripts/authservers/fosite, its own module)"
	cd scripts/authservers/fosite && $(GO) build -o $(abspath $@) .

$(AUTHSERVERS_PY_STAMP): scripts/authservers/authlib/requirements.txt
	@echo "authservers-deps: installing Authlib's pinned dependencies into $(AUTHSERVERS_VENV)"
	@test -x $(AUTHSERVERS_VENV)/bin/python || $(EXAMPLES_PYTHON) -m venv $(AUTHSERVERS_VENV)
	@$(AUTHSERVERS_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off -q -r scripts/authservers/authlib/requirements.txt
	@touch $@

$(AUTHSERVERS_OIDC_STAMP): scripts/authservers/oidc-provider/package.json scripts/authservers/oidc-provider/package-lock.json
	@echo "authservers-deps: installing oidc-provider's locked dependencies (npm ci)"
	@command -v npm >/dev/null || { echo "authservers-deps: npm not found: the interop tests need Node.js 20 or later with npm" >&2; exit 1; }
	cd scripts/authservers/oidc-provider && npm ci --no-audit --no-fund
	@touch $@

# Spring Authorization Server's loopback app: built once into a jar (the jar is its own
# stamp, built again only when the pom or a source changes), with a Maven repository
# of the project's own under .cache/m2.
AUTHSERVERS_SPRING_DIR := scripts/authservers/spring
AUTHSERVERS_SPRING_JAR := $(AUTHSERVERS_SPRING_DIR)/target/spring-authserver.jar
AUTHSERVERS_M2         := .cache/m2

$(AUTHSERVERS_SPRING_JAR): $(AUTHSERVERS_SPRING_DIR)/pom.xml $(shell find $(AUTHSERVERS_SPRING_DIR)/src -type f 2>/dev/null)
	@echo "authservers-deps: building Spring Authorization Server's loopback app (mvn package)"
	@command -v java >/dev/null && command -v mvn >/dev/null || { echo "authservers-deps: java or mvn not found: the interop tests need Java 17 or later and Maven 3.8 or later" >&2; exit 1; }
	mvn -q -B -Dmaven.repo.local=$(abspath $(AUTHSERVERS_M2)) -f $(AUTHSERVERS_SPRING_DIR)/pom.xml package
	@touch $@

# Keycloak: the pinned distribution from Maven Central, its sha1 checked, unpacked
# under .cache/authservers and built once for an in-memory database (kc.sh build) that asks every
# client for a certificate,
# so that each test starts it with `start --optimized` and no build step. Keycloak
# 26 needs Java 21 or later; the default java may be older, so a JDK is looked for
# and used for Keycloak only (internal/authservers finds it the same way).
KEYCLOAK_VERSION := 26.7.3
KEYCLOAK_SHA1    := 1e21a7f572581692aacb379dbba8413f99b67208
KEYCLOAK_ZIP     := .cache/authservers/keycloak-quarkus-dist-$(KEYCLOAK_VERSION).zip
KEYCLOAK_HOME    := .cache/authservers/keycloak-$(KEYCLOAK_VERSION)
KEYCLOAK_STAMP   := $(KEYCLOAK_HOME)/.built
KEYCLOAK_JAVA    = $(shell scripts/authservers/keycloak/java-home.sh)

$(KEYCLOAK_ZIP):
	@echo "authservers-deps: downloading Keycloak $(KEYCLOAK_VERSION) (org.keycloak:keycloak-quarkus-dist, Maven Central)"
	@mkdir -p $(dir $@)
	curl -fsSL -o $@.part https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$(KEYCLOAK_VERSION)/keycloak-quarkus-dist-$(KEYCLOAK_VERSION).zip
	@echo "$(KEYCLOAK_SHA1)  $@.part" | sha1sum -c --quiet - || { echo "authservers-deps: the Keycloak zip's sha1 is not $(KEYCLOAK_SHA1)" >&2; rm -f $@.part; exit 1; }
	@mv $@.part $@

$(KEYCLOAK_STAMP): $(KEYCLOAK_ZIP)
	@test -n "$(KEYCLOAK_JAVA)" || { echo "authservers-deps: Keycloak needs Java 21 or later: none found in JAVA_HOME or /usr/lib/jvm (install a JDK 21+, e.g. openjdk-21-jdk-headless)" >&2; exit 1; }
	@command -v unzip >/dev/null || { echo "authservers-deps: unzip not found: it unpacks Keycloak" >&2; exit 1; }
	rm -rf $(KEYCLOAK_HOME) $(KEYCLOAK_HOME).part
	mkdir -p $(KEYCLOAK_HOME).part && unzip -q $< -d $(KEYCLOAK_HOME).part
	mv $(KEYCLOAK_HOME).part/keycloak-$(KEYCLOAK_VERSION) $(KEYCLOAK_HOME) && rmdir $(KEYCLOAK_HOME).part
	@echo "authservers-deps: building Keycloak for an in-memory database (kc.sh build, Java at $(KEYCLOAK_JAVA))"
	JAVA_HOME=$(KEYCLOAK_JAVA) $(KEYCLOAK_HOME)/bin/kc.sh build --db=dev-mem --https-client-auth=request
	@touch $@

# The loopback app around the Connect2id Nimbus OAuth 2.0 SDK's server side: built
# the same way, with the same Maven repository.
AUTHSERVERS_NIMBUS_DIR := scripts/authservers/nimbus
AUTHSERVERS_NIMBUS_JAR := $(AUTHSERVERS_NIMBUS_DIR)/target/nimbus-authserver.jar

$(AUTHSERVERS_NIMBUS_JAR): $(AUTHSERVERS_NIMBUS_DIR)/pom.xml $(shell find $(AUTHSERVERS_NIMBUS_DIR)/src -type f 2>/dev/null)
	@echo "authservers-deps: building the Nimbus OAuth 2.0 SDK's loopback app (mvn package)"
	@command -v java >/dev/null && command -v mvn >/dev/null || { echo "authservers-deps: java or mvn not found: the interop tests need Java 17 or later and Maven 3.8 or later" >&2; exit 1; }
	mvn -q -B -Dmaven.repo.local=$(abspath $(AUTHSERVERS_M2)) -f $(AUTHSERVERS_NIMBUS_DIR)/pom.xml package
	@touch $@

.PHONY: authservers-deps
authservers-deps: $(AUTHSERVERS_OIDC_STAMP) $(AUTHSERVERS_PY_STAMP) $(AUTHSERVERS_FOSITE) $(AUTHSERVERS_SPRING_JAR) $(AUTHSERVERS_NIMBUS_JAR) $(KEYCLOAK_STAMP) ## install the interop tests' authorization servers, pinned (scripts/authservers/)

.PHONY: examples-deps
examples-deps: $(EXAMPLES_PY_STAMP) $(EXAMPLES_JS_STAMP) ## install the consumer examples' pinned dependencies (.venv/examples, examples/node/node_modules)

## ---- running it locally -----------------------------------------------------

.PHONY: demo
demo: ## the main job on this machine: LocalStack, fake providers, refresher runs, a consumer
	$(LAUNCHER) run -- $(GO) run ./cmd/demo

.PHONY: fake-providers
fake-providers: ## fake endpoints of the five seed dialects on 127.0.0.1 and their registry (OUT=FILE, else stdout), until Ctrl-C
	@$(GO) run ./cmd/fakeproviders $(if $(OUT),-o $(OUT))

include sam.mk
include bench.mk
