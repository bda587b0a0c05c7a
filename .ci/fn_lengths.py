"""Production functions stay short: lists the longest functions of the crates' `src/` (test
modules left out: `#[cfg(test)]` and on, and `tests.rs` files) and fails when one is longer than
MAX lines (default 120). A function runs from its `fn` line to the closing brace at its own
indentation, as rustfmt lays them out.

usage: python3 .ci/fn_lengths.py [MAX] [SHOW]
"""
import glob
import os
import re
import sys

FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)")


def lengths(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    end = next((i for i, l in enumerate(lines) if l.startswith("#[cfg(test)]")), len(lines))
    i = 0
    while i < end:
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        indent = m.group(1)
        j = i
        while j < end and not lines[j].rstrip().endswith(("{", ";")):
            j += 1
        if j < end and lines[j].rstrip().endswith(";"):
            i = j + 1  # a declaration without a body
            continue
        k = j
        while k < end and lines[k] != indent + "}":
            k += 1
        yield k - i + 1, m.group(7)
        i += 1


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    show = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    found = []
    for path in glob.glob(os.path.join(root, "crates/*/src/**/*.rs"), recursive=True):
        if os.path.basename(path) == "tests.rs":
            continue
        rel = os.path.relpath(path, root)
        found.extend((n, rel, name) for n, name in lengths(path))
    found.sort(reverse=True)
    print(f"{len(found)} functions; the longest:")
    for n, rel, name in found[:show]:
        print(f"  {n:4} {rel} {name}")
    over = [f for f in found if f[0] > limit]
    if over:
        print(f"{len(over)} over {limit} lines: split them", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
