"""Tests of template_checks.py against the committed template.yaml (make template-checks)."""

import json
import pathlib
import re
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import template_checks as tc  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = tc.load_template(ROOT / "template.yaml")


def problems(stack="token-refresher-dev", **overrides):
    return tc.parameter_problems(stack, tc.effective_parameters(TEMPLATE, overrides))


def condition(name, params):
    """Evaluates one of the template's Conditions for the given parameter values."""
    return evaluate(TEMPLATE["Conditions"][name], params)


def evaluate(node, params):
    """Evaluates a condition or rule expression for the given parameter values."""
    return tc.resolve(TEMPLATE, node, params)


class RuleTests(unittest.TestCase):
    def test_template_rule_refuses_equal_prefixes(self):
        (assertion,) = TEMPLATE["Rules"]["TokenAndStatePrefixesDiffer"]["Assertions"]
        for tokens, state, want in [("/tr", "/tr", False), ("/tr/tokens", "/tr/state", True)]:
            params = {"TokenParameterPrefix": tokens, "StateParameterPrefix": state}
            got = evaluate(assertion["Assert"], params)
            self.assertEqual(got, want, f"tokens {tokens}, state {state}: rule holds {got}, want {want}")


def sub(node, params, names):
    """Resolves a Fn::Sub (nested ones and Fn::If of the given conditions too) with fixed names for resources."""
    if isinstance(node, dict) and "Fn::If" in node:
        cond, then, otherwise = node["Fn::If"]
        return sub(then if condition(cond, params) else otherwise, params, names)
    if isinstance(node, dict) and "Fn::Sub" in node:
        text, variables = node["Fn::Sub"]
        values = {k: sub(v, params, names) for k, v in variables.items()}
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(values.get(m[1], names.get(m[1], m[1]))), text)
    if isinstance(node, dict):
        (key, arg), = node.items()
        return names[arg if isinstance(arg, str) else ".".join(arg)]
    return node


class DashboardTests(unittest.TestCase):
    def test_jobs_widget_only_in_fanout(self):
        body = TEMPLATE["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
        names = {"MetricsNamespace": "TokenRefresher", "ExpiryAlarmThresholdSeconds": "900", "FunctionTimeout": "120",
                 "RefresherFunction": "s-refresher", "FailedInvocationsQueue.QueueName": "s-failed",
                 "RefreshJobsQueue.QueueName": "s-jobs.fifo", "RefreshJobsDeadLetterQueue.QueueName": "s-jobs-dlq.fifo",
                 "AWS::Region": "us-east-1"}
        for mode, want in [("single", 0), ("fanout", 1)]:
            params = tc.effective_parameters(TEMPLATE, {"Mode": mode})
            text = sub(body, params, names)
            widgets = json.loads(text)["widgets"]  # a dashboard body is JSON, or CloudFormation refuses it
            jobs = [w for w in widgets if "jobs" in json.dumps(w)]
            self.assertEqual(len(jobs), want, f"Mode {mode}: got {len(jobs)} job queue widgets, want {want}")
            self.assertNotIn("Mode single", text)


class ReservedConcurrencyTests(unittest.TestCase):
    def test_reservation_follows_the_parameter_and_can_be_turned_off(self):
        # Fanned out, the write budget has WorkerConcurrency + 1 shares: the
        # reservation lets no more invocations run than that.
        cases = [("single", "1", "2", 1), ("single", "0", "2", None), ("single", "5", "2", 5),
                 ("fanout", "1", "2", 3), ("fanout", "7", "4", 5), ("fanout", "1", "100", 101),
                 ("fanout", "0", "4", None)]
        for mode, reserved, workers, want in cases:
            params = tc.effective_parameters(TEMPLATE, {"Mode": mode, "ReservedConcurrency": reserved,
                                                        "WorkerConcurrency": workers})
            got = tc.reserved_concurrency(TEMPLATE, params)
            self.assertEqual(got, want, f"Mode {mode}, ReservedConcurrency {reserved}, WorkerConcurrency {workers}: "
                                        f"reserves {got}, want {want}")
        self.assertEqual(TEMPLATE["Parameters"]["ReservedConcurrency"]["MinValue"], 0)
        self.assertEqual(TEMPLATE["Parameters"]["WorkerConcurrency"]["MaxValue"], 100)


class ProxyTests(unittest.TestCase):
    def test_proxy_variables_are_set_only_when_given(self):
        variables = TEMPLATE["Resources"]["RefresherFunction"]["Properties"]["Environment"]["Variables"]
        for var, param in [("HTTPS_PROXY", "HttpsProxy"), ("NO_PROXY", "NoProxy")]:
            cond, then, otherwise = variables[var]["Fn::If"]
            self.assertEqual((then, otherwise), ({"Ref": param}, {"Ref": "AWS::NoValue"}), var)
            self.assertEqual(TEMPLATE["Parameters"][param]["Default"], "", f"{param}: want an empty default")
            for value, want in [("", False), ("http://proxy.internal:3128", True), (".amazonaws.com,169.254.169.254", True)]:
                params = tc.effective_parameters(TEMPLATE, {param: value})
                got = condition(cond, params)
                self.assertEqual(got, want, f"{param}={value!r}: {var} set {got}, want {want}")

    def test_proxy_url_pattern(self):
        pattern = re.compile(TEMPLATE["Parameters"]["HttpsProxy"]["AllowedPattern"])
        for value, want in [("", True), ("http://proxy.internal:3128", True), ("https://10.0.0.5:8443", True),
                            ("proxy.internal:3128", False), ("http://proxy internal", False)]:
            got = pattern.fullmatch(value) is not None
            self.assertEqual(got, want, f"HttpsProxy {value!r}: allowed {got}, want {want}")


class ParameterTests(unittest.TestCase):
    def test_defaults_deploy(self):
        for mode in ("single", "fanout"):
            got = problems(Mode=mode)
            self.assertEqual(got, [], f"Mode {mode}: got {got}, want no problem")

    def test_visibility_timeout_shorter_than_function_timeout_is_refused_in_fanout(self):
        cases = [
            # (Mode, FunctionTimeout, JobVisibilityTimeout, refused)
            ("fanout", "900", None, True),  # the default 720 under the longest timeout
            ("fanout", "900", "899", True),
            ("fanout", "900", "900", False),
            ("fanout", "120", "720", False),
            ("single", "900", None, False),  # no queue in single mode
        ]
        for mode, timeout, visibility, refused in cases:
            over = {"Mode": mode, "FunctionTimeout": timeout}
            if visibility:
                over["JobVisibilityTimeout"] = visibility
            got = [p for p in problems(**over) if "JobVisibilityTimeout" in p]
            self.assertEqual(bool(got), refused, f"{over}: got {got}, want refused={refused}")

    def test_prefixes_overlapping_either_way_are_refused(self):
        cases = [
            ("/tr/tokens", "/tr/state", False),
            ("/tr", "/tr/state", True),  # state under tokens
            ("/tr/health", "/tr", True),  # tokens under state
            ("/tr", "/tr", True),
            ("/tr", "/tr-state", False),  # a shared start of a name is not a path under it
            ("/tr-tokens", "/tr", False),
        ]
        for tokens, state, refused in cases:
            got = [p for p in problems(TokenParameterPrefix=tokens, StateParameterPrefix=state) if "Prefix" in p]
            self.assertEqual(bool(got), refused, f"tokens {tokens}, state {state}: got {got}, want refused={refused}")

    def test_stack_name_longer_than_the_function_name_allows_is_refused(self):
        for stack, refused in [("a" * 54, False), ("a" * 55, True), ("token-refresher-prod", False), ("1abc", True)]:
            got = problems(stack=stack)
            self.assertEqual(bool(got), refused, f"stack {stack!r}: got {got}, want refused={refused}")

    def test_unknown_parameter_is_refused(self):
        with self.assertRaises(ValueError):
            tc.effective_parameters(TEMPLATE, {"NoSuchParameter": "1"})

    def test_overrides_are_split_as_samconfig_writes_them(self):
        got = tc.parse_overrides('ScheduleExpression="rate(5 minutes)" LogRetentionDays=30')
        want = {"ScheduleExpression": "rate(5 minutes)", "LogRetentionDays": "30"}
        self.assertEqual(got, want)


if __name__ == "__main__":
    unittest.main()
