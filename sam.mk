# AWS SAM targets: build, check, deploy and operate the stack in template.yaml.
# Included by the main Makefile; also works alone: `make -f sam.mk venv-tools validate build`.
#
# Tools (aws-sam-cli, cfn-lint) come pinned from requirements-tools.txt into
# .venv/tools; every target that needs them installs them first.
#
# Variables:
#   ENV=dev|prod|default      samconfig.toml environment of deploy, invoke-remote, rotate, logs (default: dev)
#   EVENT=events/<name>.json  event for invoke / invoke-remote (default: events/scheduled.json)
#   PROVIDER=name             provider to rotate, or '*' for all (rotate)

SAM_MK            := $(lastword $(MAKEFILE_LIST))
TOOLS_PYTHON      ?= python3
TOOLS_VENV        ?= .venv/tools
TOOLS_REQUIREMENTS := requirements-tools.txt
TOOLS_STAMP       := $(TOOLS_VENV)/.installed
SAM               := $(TOOLS_VENV)/bin/sam
CFN_LINT          := $(TOOLS_VENV)/bin/cfn-lint
SAM_TEMPLATE      ?= template.yaml
SAM_BUILD_DIR     := .aws-sam/build
GO                ?= go

ENV      ?= dev
EVENT    ?= events/scheduled.json
PROVIDER ?=
# The stack of each samconfig.toml environment: "default" is token-refresher,
# any other token-refresher-<env>.
STACK_NAME ?= $(if $(filter default,$(ENV)),token-refresher,token-refresher-$(ENV))

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
build: $(TOOLS_STAMP) ## sam build: the arm64 bootstrap in .aws-sam/build
	$(SAM) build --template-file $(SAM_TEMPLATE) --build-in-source --parallel

.PHONY: sam-check
sam-check: validate build ## what `make test` runs for SAM: validate, then build; fails on any error or warning

.PHONY: deploy
deploy: build ## deploy the stack of ENV (samconfig.toml): make deploy ENV=dev|prod
	$(SAM) deploy --config-env $(ENV)

.PHONY: invoke
invoke: ## run one invocation locally with EVENT against the AWS the SDK settings name: make invoke EVENT=events/refresh.json
	$(GO) run ./functions/refresher -event $(EVENT)

.PHONY: invoke-remote
invoke-remote: $(TOOLS_STAMP) ## invoke the deployed function with EVENT: make invoke-remote EVENT=events/refresh.json ENV=dev
	$(SAM) remote invoke RefresherFunction --config-env $(ENV) --stack-name $(STACK_NAME) --event-file $(EVENT)

.PHONY: rotate
rotate: export PROVIDER := $(PROVIDER)
rotate: $(TOOLS_STAMP) ## get a new token now for one provider ('*' for all): make rotate PROVIDER=ecard ENV=prod
	@case "$$PROVIDER" in \
	  '') echo "rotate: give PROVIDER=<name>, or PROVIDER='*' for all" >&2; exit 2 ;; \
	  '*') ;; \
	  *[!a-z0-9_-]*) echo "rotate: PROVIDER=$$PROVIDER is not a provider name ([a-z0-9_-]+)" >&2; exit 2 ;; \
	esac
	$(SAM) remote invoke RefresherFunction --config-env $(ENV) --stack-name $(STACK_NAME) \
	  --event "{\"action\":\"rotate\",\"providers\":[\"$$PROVIDER\"]}"

.PHONY: logs
logs: $(TOOLS_STAMP) ## follow the function's logs: make logs ENV=prod
	$(SAM) logs --config-env $(ENV) --stack-name $(STACK_NAME) --name RefresherFunction --tail

.PHONY: sam-deploy-local
sam-deploy-local: build ## deploy the built stack to the running LocalStack, check it, delete it (smoke test)
	scripts/sam-deploy-local
