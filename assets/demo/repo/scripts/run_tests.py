"""Runs the unit tests and writes a JUnit XML report (standard library only).

usage: python3 scripts/run_tests.py [--junit PATH]
Exit status 0 when every test passes, 1 otherwise.
"""

import sys
import time
import unittest
from pathlib import Path
from xml.etree import ElementTree as ET


class Recorder(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = []
        self._start = 0.0

    def startTest(self, test):
        self._start = time.monotonic()
        super().startTest(test)

    def _record(self, test, kind, detail=""):
        self.cases.append((test, kind, detail, time.monotonic() - self._start))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def write_junit(path: Path, cases) -> None:
    suite = ET.Element("testsuite", name="unit-tests", tests=str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c[1] == "failure")))
    suite.set("errors", str(sum(1 for c in cases if c[1] == "error")))
    suite.set("skipped", str(sum(1 for c in cases if c[1] == "skipped")))
    for test, kind, detail, seconds in cases:
        cls = f"{type(test).__module__}.{type(test).__name__}"
        case = ET.SubElement(
            suite, "testcase", classname=cls, name=test._testMethodName, time=f"{seconds:.3f}"
        )
        if kind in ("failure", "error", "skipped"):
            message = detail.strip().splitlines()[-1] if detail else ""
            node = ET.SubElement(case, kind, message=message)
            node.text = detail
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)


def main(argv) -> int:
    junit = Path(argv[argv.index("--junit") + 1]) if "--junit" in argv else None
    suite = unittest.defaultTestLoader.discover("tests", top_level_dir=".")
    runner = unittest.TextTestRunner(resultclass=Recorder, verbosity=2, stream=sys.stdout)
    result = runner.run(suite)
    if junit:
        write_junit(junit, result.cases)
        print(f"JUnit report written to {junit}")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
