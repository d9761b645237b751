# Every command a user or CI needs. `make demo` and `make test` set up what they
# need themselves on a fresh machine: Go, Python 3.13 with venv, and network access to
# the Go module proxy and PyPI are all they assume; `make test` also runs the consumer
# examples, so it needs Node.js 20 with npm and the npm registry too.

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
test: lint unit sam-check integration ## everything CI runs: lint, unit, SAM checks, integration and end-to-end against LocalStack

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

.PHONY: unit
unit: ## unit tests, with the race detector; the function also as built for Lambda (tag lambda.norpc)
	$(GO) test -race $(GOTEST_FLAGS) ./...
	$(GO) test -race $(GOTEST_FLAGS) -tags lambda.norpc ./functions/refresher

.PHONY: integration
integration: build examples-deps ## integration and end-to-end tests, the host-mode executor's tests and a deploy of the built stack, against a LocalStack the launcher starts and stops
	$(LAUNCHER) run -- bash -c '$(GO) test -tags integration $(GOTEST_FLAGS) -run Integration -p 1 -timeout 30m ./... && scripts/sam-deploy-local'
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
