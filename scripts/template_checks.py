#!/usr/bin/env python3
"""Offline checks of template.yaml and of a deploy's parameters, before CloudFormation sees them.

usage:
  template_checks.py parameters TEMPLATE STACK [OVERRIDES]
      The stack name and the parameter values a deploy would use (the template's
      defaults, then OVERRIDES, one string as in samconfig.toml: 'A="x" B=2') are
      checked for what AWS refuses only half-way through a deploy, or what the
      template's own constraints cannot say because CloudFormation compares no
      numbers and tests no prefixes. Every problem is printed; exit 2 when any.
  template_checks.py metadata TEMPLATE
      The AWS::ServerlessRepo::Application metadata is complete and valid: read
      with the serverlessrepo parser `sam publish` uses, then held to the
      Serverless Application Repository's field constraints. Exit 1 when not.

Runs with the tools venv's Python (.venv/tools: PyYAML and SAM CLI come with it).
"""

import pathlib
import re
import shlex
import sys

import yaml

# The function is named STACK-refresher, and Lambda function names are at most 64
# characters; the queues (STACK-jobs-dlq.fifo, at most 80) allow more.
MAX_STACK_NAME = 64 - len("-refresher")
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form intrinsics (!Ref, !Sub, ...) as {"Ref": ...} etc."""


def _intrinsic(loader, tag_suffix, node):
    name = "Ref" if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path):
    """Parses a template file with CloudFormation's short-form tags."""
    return yaml.load(pathlib.Path(path).read_text(), Loader=_CfnLoader)  # noqa: S506 - safe loader plus tags


def parse_overrides(text):
    """Splits samconfig-style overrides ('A="x y" B=2') into a dict."""
    out = {}
    for word in shlex.split(text or ""):
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError(f"override {word!r} is not KEY=VALUE")
        out[key] = value
    return out


def effective_parameters(template, overrides):
    """The values a deploy gives the template's parameters: defaults, then overrides."""
    params = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ValueError(f"the template has no parameter {', '.join(unknown)}")
    params.update(overrides)
    return params


def resolve(template, node, params):
    """The value of a template expression for the given parameter values: Ref (of a
    parameter, a condition or AWS::NoValue, which is None), Fn::If, Fn::Select,
    Fn::Equals, Fn::Not, Fn::And and Fn::Or; anything else is returned as it is."""
    conditions = template.get("Conditions", {})

    def value(node):
        if not (isinstance(node, dict) and len(node) == 1):
            return node
        (k, a), = node.items()
        if k == "Ref":
            if a == "AWS::NoValue":
                return None
            return value(conditions[a]) if a in conditions else params[a]
        if k == "Condition":
            return value(conditions[a])
        if k == "Fn::If":
            return value(a[1]) if value(conditions[a[0]]) else value(a[2])
        if k == "Fn::Select":
            return value(value(a[1])[int(value(a[0]))])
        if k == "Fn::Equals":
            return str(value(a[0])) == str(value(a[1]))
        if k == "Fn::Not":
            return not value(a[0])
        if k == "Fn::And":
            return all(value(x) for x in a)
        if k == "Fn::Or":
            return any(value(x) for x in a)
        return node

    return value(node)


def reserved_concurrency(template, params):
    """The function's ReservedConcurrentExecutions for the given parameter values, or
    None when it reserves nothing."""
    prop = template["Resources"]["RefresherFunction"]["Properties"].get("ReservedConcurrentExecutions")
    got = resolve(template, prop, params)
    return None if got is None else int(got)


def _under(path, prefix):
    """Whether SSM path is prefix itself or below it (/a/b is under /a; /ab is not)."""
    return path == prefix or path.startswith(prefix + "/")


def _int(params, name, problems):
    try:
        return int(params[name])
    except (KeyError, ValueError):
        problems.append(f"{name}={params.get(name)!r} is not a number")
        return None


def parameter_problems(stack, params):
    """Every reason a deploy of stack with params would fail or misbehave, as messages."""
    problems = []
    if len(stack) > MAX_STACK_NAME:
        problems.append(
            f"stack name {stack!r} has {len(stack)} characters, at most {MAX_STACK_NAME}: the function "
            f"is named <stack>-refresher and Lambda allows 64 (choose a shorter ENV or STACK_NAME)")
    if not STACK_NAME.match(stack):
        problems.append(f"stack name {stack!r}: CloudFormation wants a letter, then letters, digits and '-'")

    if params.get("Mode") == "fanout":
        timeout = _int(params, "FunctionTimeout", problems)
        visibility = _int(params, "JobVisibilityTimeout", problems)
        if timeout is not None and visibility is not None and visibility < timeout:
            problems.append(
                f"Mode fanout: JobVisibilityTimeout {visibility} is less than FunctionTimeout {timeout}: Lambda "
                f"refuses an SQS event source whose visibility timeout is shorter than the function's timeout; "
                f"give JobVisibilityTimeout={min(6 * timeout, 43200)} (AWS recommends 6 x FunctionTimeout), "
                f"at least {timeout}")

    tokens = params.get("TokenParameterPrefix", "").rstrip("/")
    state = params.get("StateParameterPrefix", "").rstrip("/")
    if tokens and state:
        if _under(state, tokens):
            problems.append(f"StateParameterPrefix {state} is under TokenParameterPrefix {tokens}: "
                            f"the refresher's records would sit among the tokens, and consumers could read them")
        elif _under(tokens, state):
            problems.append(f"TokenParameterPrefix {tokens} is under StateParameterPrefix {state}: a record "
                            f"could overwrite a token, and the operators' policy would cover the tokens")

    if "ReservedConcurrency" in params:
        _int(params, "ReservedConcurrency", problems)
    return problems


# The Serverless Application Repository's constraints on each field (its API
# reference, CreateApplication) that the parser does not check itself.
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
AUTHOR = re.compile(r"^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$")
NAME = re.compile(r"^[a-zA-Z0-9-]+$")
LABEL = re.compile(r"^[a-zA-Z0-9+\-_:/@]+$")
REQUIRED = ["name", "description", "author", "spdx_license_id", "license_url", "readme_url",
            "semantic_version", "source_code_url", "home_page_url", "labels"]


def metadata_problems(template, root):
    """Every reason `sam publish` or the repository would refuse the template's application metadata."""
    # The parser `sam publish` runs (SAM CLI vendors the serverlessrepo package).
    from samcli.vendor.serverlessrepo.exceptions import ServerlessRepoError
    from samcli.vendor.serverlessrepo.parser import get_app_metadata

    try:
        meta = get_app_metadata(template)
        meta.validate(REQUIRED)
    except ServerlessRepoError as e:
        return [str(e)]
    problems = []

    def want(ok, msg):
        if not ok:
            problems.append(msg)

    want(NAME.match(meta.name) and len(meta.name) <= 140, f"Name {meta.name!r}: 1-140 of A-Z a-z 0-9 -")
    want(len(meta.description) <= 256, f"Description: {len(meta.description)} characters, at most 256")
    want(AUTHOR.match(meta.author) and len(meta.author) <= 127,
         f"Author {meta.author!r}: lower-case letters, digits and single '-' inside, at most 127")
    want(SEMVER.match(str(meta.semantic_version)), f"SemanticVersion {meta.semantic_version!r} is not semver 2.0.0")
    want(meta.spdx_license_id == "Apache-2.0", f"SpdxLicenseId {meta.spdx_license_id!r}: LICENSE is Apache-2.0")
    for field, url in (("SourceCodeUrl", meta.source_code_url), ("HomePageUrl", meta.home_page_url)):
        want(str(url).startswith("https://"), f"{field} {url!r} is not an https URL")
    for field, local in (("LicenseUrl", meta.license_url), ("ReadmeUrl", meta.readme_url)):
        # `sam package` uploads a local file and puts its S3 URL in the packaged template.
        want((root / str(local)).is_file(), f"{field} {local!r}: no such file beside the template")
    if meta.license_url and (root / str(meta.license_url)).is_file():
        text = (root / str(meta.license_url)).read_text()
        want("Apache License" in text and "Version 2.0, January 2004" in text,
             f"{meta.license_url} is not the Apache License 2.0 text")
    labels = meta.labels if isinstance(meta.labels, list) else []
    want(1 <= len(labels) <= 10, f"Labels: {len(labels)}, want 1 to 10")
    for label in labels:
        want(LABEL.match(str(label)) and len(str(label)) <= 127, f"label {label!r}: 1-127 of A-Z a-z 0-9 + - _ : / @")
    return problems


def main(argv):
    if len(argv) >= 4 and argv[1] == "parameters":
        template = load_template(argv[2])
        try:
            params = effective_parameters(template, parse_overrides(argv[4] if len(argv) > 4 else ""))
        except ValueError as e:
            print(f"parameters: {e}", file=sys.stderr)
            return 2
        problems = parameter_problems(argv[3], params)
        for p in problems:
            print(f"parameters: {p}", file=sys.stderr)
        return 2 if problems else 0
    if len(argv) == 3 and argv[1] == "metadata":
        path = pathlib.Path(argv[2])
        problems = metadata_problems(load_template(path), path.resolve().parent)
        for p in problems:
            print(f"metadata: {p}", file=sys.stderr)
        if not problems:
            print(f"metadata: {path}: AWS::ServerlessRepo::Application complete and valid")
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
