# Every command a user or CI needs. `make demo` and `make test` set up what they
# need themselves on a fresh machine: Go, Python 3.13 with venv, and network access to
# the Go module proxy and PyPI are all they assume.

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
test: lint unit sam-check integration ## everything CI runs: lint, unit, SAM checks, integration against LocalStack

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@echo "lint: gofmt, go vet, staticcheck"
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags integration ./...

.PHONY: unit
unit: ## unit tests, with the race detector
	$(GO) test -race $(GOTEST_FLAGS) ./...

.PHONY: integration
integration: build ## integration tests and a deploy of the built stack, against a LocalStack the launcher starts and stops
	$(LAUNCHER) run -- bash -c '$(GO) test -tags integration $(GOTEST_FLAGS) -run Integration -p 1 ./... && scripts/sam-deploy-local'

## ---- running it locally -----------------------------------------------------

.PHONY: demo
demo: ## the main job on this machine: LocalStack, fake providers, refresher runs, a consumer
	$(LAUNCHER) run -- $(GO) run ./cmd/demo

include sam.mk
include bench.mk
