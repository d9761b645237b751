"""Tests of scripts/deploy-preflight: a deploy that cannot succeed fails before any install or build."""

import os
import pathlib
import subprocess
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "deploy-preflight"


def preflight(*args, **env):
    """Runs the script with no AWS credentials or profile of the caller's, and env added."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                 AWS_EC2_METADATA_DISABLED="true", **env)
    r = subprocess.run([str(SCRIPT), *args], env=clean, capture_output=True, text=True, cwd=ROOT)
    return r.returncode, r.stderr


class PreflightTests(unittest.TestCase):
    def test_each_problem_is_named_before_anything_runs(self):
        cases = [
            (("dev", "token-refresher-dev", "no-such-registry.yaml"), "PROVIDERS=no-such-registry.yaml is not a file"),
            (("dev", "a" * 55), "has 55 characters, at most 54"),
            (("nosuch", "token-refresher-nosuch"), "no environment [nosuch] in samconfig.toml"),
            (("dev", "token-refresher-dev"), "no usable AWS credentials for region us-east-1"),
        ]
        for args, want in cases:
            code, err = preflight(*args)
            self.assertEqual(code, 2, f"{args}: exit {code}, want 2 ({err})")
            self.assertIn(want, err, f"{args}: got {err!r}, want it to say {want!r}")
            self.assertIn("nothing installed, built or deployed", err)

    def test_local_needs_no_region_or_credentials(self):
        code, err = preflight("local", "token-refresher-local")
        self.assertEqual(code, 0, f"exit {code}: {err}")


if __name__ == "__main__":
    unittest.main()
