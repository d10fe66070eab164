#!/usr/bin/env python3
"""Keeps the code in docs/*.md identical to compiled source, so the docs cannot rot.

A page marks a code block as a snippet with an HTML comment on the line before it:

    <!-- snippet: docs/snippets/timers.cpp#call-later -->
    ```cpp
    ...
    ```

and the source file marks the region between two comments:

    // [snippet:call-later]
    ...
    // [end]

The block must equal the region with its common indentation removed. The build compiles
every file under docs/snippets/ (docs/meson.build), and docs/snippets_test.cpp runs them.

Usage: check_snippets.py ROOT         checks; prints "docs: N snippets checked" or the
                                      differences, exits 1 on any
       check_snippets.py ROOT --fix   rewrites the blocks in the pages from the sources
"""
import pathlib
import re
import sys
import textwrap

MARK = re.compile(r"^<!-- snippet: (\S+?)#(\S+) -->$")
BEGIN = re.compile(r"^\s*// \[snippet:(\S+)\]\s*$")
END = re.compile(r"^\s*// \[end\]\s*$")


def regions(path):
    """Maps each region name in `path` to its dedented text."""
    out, name, body = {}, None, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if name is None:
            m = BEGIN.match(line)
            if m:
                name, body = m.group(1), []
        elif END.match(line):
            if name in out:
                raise SystemExit(f"{path}:{number}: region '{name}' defined twice")
            out[name] = textwrap.dedent("\n".join(body)).strip("\n")
            name = None
        else:
            body.append(line)
    if name is not None:
        raise SystemExit(f"{path}: region '{name}' has no '// [end]'")
    return out


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    fix = "--fix" in sys.argv[2:]
    cache, problems, checked = {}, [], 0
    for page in sorted((root / "docs").glob("*.md")):
        lines = page.read_text().splitlines()
        out, i, changed = [], 0, False
        while i < len(lines):
            line = lines[i]
            out.append(line)
            m = MARK.match(line)
            i += 1
            if not m:
                continue
            where = f"{page.relative_to(root)}:{i}"
            source = root / m.group(1)
            if not source.is_file():
                problems.append(f"{where}: no such source file {m.group(1)}")
                continue
            if source not in cache:
                cache[source] = regions(source)
            want = cache[source].get(m.group(2))
            if want is None:
                problems.append(f"{where}: {m.group(1)} has no region '{m.group(2)}'")
                continue
            if i >= len(lines) or not lines[i].startswith("```"):
                problems.append(f"{where}: the marker must be followed by a ``` block")
                continue
            fence = lines[i]
            end = i + 1
            while end < len(lines) and lines[end] != "```":
                end += 1
            if end == len(lines):
                problems.append(f"{where}: unterminated code block")
                continue
            have = "\n".join(lines[i + 1:end])
            checked += 1
            if have != want:
                if fix:
                    changed = True
                else:
                    problems.append(f"{where}: block differs from {m.group(1)}#{m.group(2)}:\n"
                                    f"--- page ---\n{have}\n--- source ---\n{want}")
            out.extend([fence, *want.splitlines(), "```"])
            i = end + 1
        if fix and changed:
            page.write_text("\n".join(out) + "\n")
            print(f"rewrote {page.relative_to(root)}")
    for p in problems:
        print(p)
    print(f"docs: {checked} snippets checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
