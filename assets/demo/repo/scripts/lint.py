"""A small linter (standard library only): every Python file compiles, has
no tabs, no trailing spaces and no line over 100 characters.

usage: python3 scripts/lint.py DIR...   (exit 1 on findings)
"""

import py_compile
import sys
from pathlib import Path

MAX = 100


def lint(path: Path) -> list:
    found = []
    try:
        py_compile.compile(str(path), doraise=True)
    except py_compile.PyCompileError as e:
        found.append(f"{path}:1: does not compile: {e.msg.strip()}")
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if "\t" in line:
            found.append(f"{path}:{n}: tab character")
        if line != line.rstrip():
            found.append(f"{path}:{n}: trailing whitespace")
        if len(line) > MAX:
            found.append(f"{path}:{n}: line is {len(line)} characters (max {MAX})")
    return found


def main(dirs) -> int:
    files = sorted(p for d in dirs for p in Path(d).rglob("*.py"))
    findings = [f for p in files for f in lint(p)]
    for f in findings:
        print(f)
    print(f"lint: {len(files)} files, {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["."]))
