# AWS SAM targets: build, check, deploy and operate the stack in template.yaml.
# Included by the main Makefile; also works alone: `make -f sam.mk venv-tools validate build`.
#
# Tools (aws-sam-cli, cfn-lint) come pinned from requirements-tools.txt into
# .venv/tools; every target that needs them installs them first.
#
# Variables:
#   ENV=dev|prod|default   samconfig.toml environment of deploy, invoke-remote, rotate, logs (default: dev)
#   PROVIDERS=FILE         provider registry: to store in the stack's registry bucket (providers,
#                          and deploy after the stack is up); to embed in the function (build)
#   ARCH=arm64|x86_64      the function's instruction set, for the template and the build (default arm64)
#   EVENT=events/<name>.json  event for invoke / invoke-remote (default: events/scheduled.json)
#   PROVIDER=name          provider to rotate, or '*' for all (rotate)

SAM_MK            := $(lastword $(MAKEFILE_LIST))
TOOLS_PYTHON      ?= python3
TOOLS_VENV        ?= .venv/tools
TOOLS_REQUIREMENTS := requirements-tools.txt
TOOLS_STAMP       := $(TOOLS_VENV)/.installed
SAM               := $(TOOLS_VENV)/bin/sam
CFN_LINT          := $(TOOLS_VENV)/bin/cfn-lint
SAM_TEMPLATE      ?= template.yaml
SAM_BUILD_DIR     ?= .aws-sam/build
GO                ?= go

ENV       ?= dev
EVENT     ?= events/scheduled.json
PROVIDER  ?=
PROVIDERS ?=
# The function runs arm64 on AWS; a local deployment runs on this host's instruction set.
HOST_ARCH := $(patsubst aarch64,arm64,$(shell uname -m))
ARCH      ?= $(if $(filter local,$(ENV)),$(HOST_ARCH),arm64)
GOARCH_OF  = $(if $(filter x86_64,$(ARCH)),amd64,$(if $(filter arm64,$(ARCH)),arm64,$(error ARCH=$(ARCH): want arm64 or x86_64)))
# The stack of each samconfig.toml environment: "default" is token-refresher,
# any other token-refresher-<env>.
STACK_NAME ?= $(if $(filter default,$(ENV)),token-refresher,token-refresher-$(ENV))

# ENV=local is the stack in LocalStack: the commands below then talk to it, started
# by the launcher if it is not running (`localstack/launcher stop` stops it).
LAUNCHER        ?= localstack/launcher
LOCALSTACK_PORT ?= 4566
ifeq ($(ENV),local)
AWS_TARGET := env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ENDPOINT_URL=http://127.0.0.1:$(LOCALSTACK_PORT) \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
LOCAL_UP   := $(LAUNCHER) start
else
AWS_TARGET :=
LOCAL_UP   := true
endif
# PARAMS: more template parameters for a deploy, e.g. PARAMS='ScheduleExpression="rate(1 minute)"'.
# Exported, so the recipes read it from the environment and its quotes stay its own.
PARAMS ?=
export PARAMS

# The region the caller's environment names, before the default below: the deploy
# check must tell a region given from none.
DEPLOY_REGION := $(or $(AWS_REGION),$(AWS_DEFAULT_REGION))

# No usage reports from SAM CLI (this also keeps it off the network when it is offline).
export SAM_CLI_TELEMETRY ?= 0
# sam validate/build need a region even though they call no AWS API.
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: sam-help
sam-help: ## list the SAM targets (the default goal of `make -f sam.mk`)
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(SAM_MK) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(TOOLS_STAMP): $(TOOLS_REQUIREMENTS)
	@echo "venv-tools: installing $$(grep -cE '^[a-zA-Z]' $(TOOLS_REQUIREMENTS)) pinned tools from $(TOOLS_REQUIREMENTS) into $(TOOLS_VENV) (about a minute the first time) ..."
	@test -x $(TOOLS_VENV)/bin/python || $(TOOLS_PYTHON) -m venv $(TOOLS_VENV)
	@$(TOOLS_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off -q -r $(TOOLS_REQUIREMENTS)
	@touch $@
	@echo "venv-tools: $$($(SAM) --version); $$($(CFN_LINT) --version)"

.PHONY: venv-tools
venv-tools: $(TOOLS_STAMP) ## install the pinned SAM CLI and cfn-lint into .venv/tools (again only when requirements-tools.txt changes)

.PHONY: validate
validate: $(TOOLS_STAMP) ## check template.yaml: sam validate --lint and cfn-lint
	@echo "validate: sam validate --lint"
	$(SAM) validate --lint --template-file $(SAM_TEMPLATE)
	@echo "validate: cfn-lint"
	$(CFN_LINT) $(SAM_TEMPLATE)

.PHONY: build
build: $(TOOLS_STAMP) ## sam build: the bootstrap for ARCH in .aws-sam/build, embedding PROVIDERS when given
	@if [ -n "$(PROVIDERS)" ]; then test -f "$(PROVIDERS)" || { echo "build: PROVIDERS=$(PROVIDERS) is not a file" >&2; exit 2; }; \
	  else echo "build: no PROVIDERS=FILE given: the function is built unconfigured (fine for checks, not for a deploy)"; fi
	TOKEN_REFRESHER_GOARCH=$(GOARCH_OF) TOKEN_REFRESHER_PROVIDERS=$(if $(PROVIDERS),$(abspath $(PROVIDERS))) \
	  $(SAM) build --template-file $(SAM_TEMPLATE) --build-dir $(SAM_BUILD_DIR) --build-in-source --parallel --parameter-overrides Architecture=$(ARCH)

# What CloudFormation cannot say in the template (it compares no numbers, tests no
# prefixes) is checked by scripts/template_checks.py: here its own tests, and on
# every deploy the stack's name and parameter values, before anything is built.
TEMPLATE_CHECKS = $(TOOLS_VENV)/bin/python scripts/template_checks.py

.PHONY: template-checks
template-checks: $(TOOLS_STAMP) ## test the offline checks of a deploy's parameters; check the Serverless Application Repository metadata
	$(TOOLS_VENV)/bin/python -m unittest discover -s scripts -p 'test_*.py'
	$(TEMPLATE_CHECKS) metadata $(SAM_TEMPLATE)

# checkov in its own venv: it pins a boto3 that aws-sam-cli's cannot sit beside.
CHECKOV_VENV  ?= .venv/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements-checkov.txt
	@echo "checkov: installing the pinned checkov from requirements-checkov.txt into $(CHECKOV_VENV) (about 30 s the first time) ..."
	@test -x $(CHECKOV_VENV)/bin/python || $(TOOLS_PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off -q -r requirements-checkov.txt
	@touch $@

.PHONY: checkov
checkov: $(CHECKOV_STAMP) ## scan template.yaml with checkov; fails on any finding not explained in the template (Metadata checkov skip)
	@# Offline (--skip-download): no platform key, no guideline download.
	$(CHECKOV_VENV)/bin/checkov --file $(SAM_TEMPLATE) --framework cloudformation --skip-download --compact --quiet

.PHONY: sam-check
sam-check: validate template-checks checkov build ## what `make test` runs for SAM: validate, the template checks, checkov, then build; fails on any error or warning

.PHONY: need-providers
need-providers:
	@test -n "$(PROVIDERS)" || { echo "give PROVIDERS=FILE, the provider registry to deploy (see functions/refresher/providers.example.yaml)" >&2; exit 2; }

# A deploy fails fast: the registry file, the stack name, the region and the
# credentials are checked before anything is installed or built (deploy-preflight),
# then the parameter values against the template, then the stack is deployed.
.PHONY: deploy
deploy: ## deploy the stack of ENV (samconfig.toml); with PROVIDERS=FILE, store that registry after it: make deploy ENV=local|dev|prod [PROVIDERS=FILE]
	@DEPLOY_REGION=$(DEPLOY_REGION) PYTHON=$(TOOLS_PYTHON) scripts/deploy-preflight $(ENV) $(STACK_NAME) $(PROVIDERS)
	@$(MAKE) --no-print-directory -f $(SAM_MK) deploy-parameters
	@$(MAKE) --no-print-directory -f $(SAM_MK) deploy-stack

.PHONY: deploy-parameters
deploy-parameters: $(TOOLS_STAMP)
	@# --parameter-overrides replaces the environment's own overrides: repeat them.
	@$(TEMPLATE_CHECKS) parameters $(SAM_TEMPLATE) $(STACK_NAME) "$$($(TOOLS_VENV)/bin/python scripts/sam-overrides $(ENV)) Architecture=$(ARCH) $$PARAMS"

.PHONY: deploy-stack
deploy-stack: $(if $(PROVIDERS),check) build
ifeq ($(ENV),local)
	$(LOCAL_UP)
	$(AWS_TARGET) scripts/deploy-local $(STACK_NAME) $(SAM_BUILD_DIR)/template.yaml \
	  "$$($(TOOLS_VENV)/bin/python scripts/sam-overrides $(ENV)) Architecture=$(ARCH) $$PARAMS"
else
	$(SAM) deploy --config-env $(ENV) --parameter-overrides "$$($(TOOLS_VENV)/bin/python scripts/sam-overrides $(ENV)) Architecture=$(ARCH) $$PARAMS"
endif
	$(if $(PROVIDERS),@$(MAKE) --no-print-directory -f $(SAM_MK) providers ENV=$(ENV) STACK_NAME=$(STACK_NAME) PROVIDERS=$(PROVIDERS))

.PHONY: delete
delete: $(TOOLS_STAMP) ## delete the stack of ENV: make delete ENV=local
	$(AWS_TARGET) $(SAM) delete --config-env $(ENV) --stack-name $(STACK_NAME) --no-prompts --region us-east-1

.PHONY: invoke
invoke: ## run one invocation locally with EVENT against the AWS the SDK settings name: make invoke EVENT=events/refresh.json
	$(GO) run ./functions/refresher -event $(EVENT)

.PHONY: invoke-remote
invoke-remote: $(TOOLS_STAMP) ## invoke the deployed function with EVENT: make invoke-remote EVENT=events/refresh.json ENV=dev
	$(AWS_TARGET) $(SAM) remote invoke RefresherFunction --config-env $(ENV) --stack-name $(STACK_NAME) --event-file $(EVENT)

.PHONY: rotate
rotate: export PROVIDER := $(PROVIDER)
rotate: $(TOOLS_STAMP) ## get a new token now for one provider ('*' for all): make rotate PROVIDER=ecard ENV=prod
	@case "$$PROVIDER" in \
	  '') echo "rotate: give PROVIDER=<name>, or PROVIDER='*' for all" >&2; exit 2 ;; \
	  '*') ;; \
	  *[!a-z0-9_-]*) echo "rotate: PROVIDER=$$PROVIDER is not a provider name ([a-z0-9_-]+)" >&2; exit 2 ;; \
	esac
	$(AWS_TARGET) $(SAM) remote invoke RefresherFunction --config-env $(ENV) --stack-name $(STACK_NAME) \
	  --event "{\"action\":\"rotate\",\"providers\":[\"$$PROVIDER\"]}"

.PHONY: logs
logs: $(TOOLS_STAMP) ## follow the function's logs: make logs ENV=prod (ENV=local: the last hour, once)
ifeq ($(ENV),local)
	$(AWS_TARGET) $(SAM) logs --config-env $(ENV) --stack-name $(STACK_NAME) --name RefresherFunction --start-time '1 hour ago'
else
	$(SAM) logs --config-env $(ENV) --stack-name $(STACK_NAME) --name RefresherFunction --tail
endif

.PHONY: status
status: ## each provider's health, token expiry and last failure; exit 1 when one is failing: make status ENV=prod [PROVIDERS=FILE]
	@$(LOCAL_UP) >/dev/null 2>&1 || true
	$(AWS_TARGET) $(GO) run ./cmd/tokenctl status $(if $(PROVIDERS),-providers $(PROVIDERS)) \
	  $(if $(TOKEN_PREFIX),-token-prefix $(TOKEN_PREFIX)) $(if $(STATE_PREFIX),-state-prefix $(STATE_PREFIX))

.PHONY: check
check: need-providers ## validate a registry offline; PROBE=1 also requests a token from each provider, publishing nothing: make check PROVIDERS=FILE [PROBE=1 ENV=dev]
	$(if $(PROBE),$(AWS_TARGET)) $(GO) run ./cmd/tokenctl check $(if $(PROBE),-probe) $(PROVIDERS)

# The stack's registry bucket, secret name prefix and token prefix, from its outputs,
# on one line (empty when the stack has no registry).
REGISTRY_OUTPUTS = $(AWS_TARGET) $(SAM) list stack-outputs --config-env $(ENV) --stack-name $(STACK_NAME) --output json \
  | $(TOOLS_VENV)/bin/python -c 'import json, sys; o = {x["OutputKey"]: x["OutputValue"] for x in json.load(sys.stdin)}; print(*(o.get(k, "") for k in ("RegistryBucket", "SecretNamePrefix", "TokenParameterPrefix")))'

.PHONY: providers
providers: need-providers $(TOOLS_STAMP) ## store every provider of FILE in the stack's registry (upsert, validated first; no redeploy): make providers ENV=dev PROVIDERS=FILE
	@$(LOCAL_UP) >/dev/null 2>&1 || true
	@set -- $$($(REGISTRY_OUTPUTS)); \
	  test -n "$$1" -a -n "$$2" -a -n "$$3" || { echo "providers: stack $(STACK_NAME) has no RegistryBucket output: deploy it first (make deploy ENV=$(ENV))" >&2; exit 2; }; \
	  echo "providers: s3://$$1/providers.yaml of stack $(STACK_NAME)" >&2; \
	  $(AWS_TARGET) $(GO) run ./cmd/tokenctl providers put -bucket "$$1" -secret-prefix "$$2" -token-prefix "$$3" $(PROVIDERS) >&2

.PHONY: sam-deploy-local
sam-deploy-local: build ## deploy the built stack to the running LocalStack, check it, delete it (smoke test)
	scripts/sam-deploy-local
