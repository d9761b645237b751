"""Tests of the application metadata check of template_checks.py against the committed template.yaml."""

import copy
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import template_checks as tc  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = tc.load_template(ROOT / "template.yaml")


class MetadataTests(unittest.TestCase):
    def test_committed_metadata_is_complete_and_valid(self):
        got = tc.metadata_problems(TEMPLATE, ROOT)
        self.assertEqual(got, [], f"got {got}, want none")

    def test_broken_metadata_is_refused(self):
        def broken(change):
            t = copy.deepcopy(TEMPLATE)
            change(t["Metadata"]["AWS::ServerlessRepo::Application"])
            return tc.metadata_problems(t, ROOT)

        cases = {
            "no author": lambda m: m.pop("Author"),
            "no semantic version": lambda m: m.pop("SemanticVersion"),
            "version not semver": lambda m: m.update(SemanticVersion="1.0"),
            "licence file missing": lambda m: m.update(LicenseUrl="NO-LICENSE"),
            "upper-case author": lambda m: m.update(Author="Token Refresher"),
            "label with a space": lambda m: m.update(Labels=["oauth tokens"]),
            "both body and url": lambda m: m.update(ReadmeBody="x"),
        }
        for name, change in cases.items():
            got = broken(change)
            self.assertTrue(got, f"{name}: got no problem, want one")
        t = copy.deepcopy(TEMPLATE)
        del t["Metadata"]["AWS::ServerlessRepo::Application"]
        self.assertTrue(tc.metadata_problems(t, ROOT), "no metadata section: got no problem, want one")


if __name__ == "__main__":
    unittest.main()
