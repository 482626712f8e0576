#!/usr/bin/env python3
"""Reads tests/mutants.txt and applies one mutant; the driver is scripts/mutants.sh.

  mutants.py list LIST                  one line per mutant: N <TAB> id <TAB> file <TAB> description
  mutants.py check LIST TREE            every mutant's fragment occurs exactly once in TREE; else exit 1
  mutants.py apply LIST TREE N          applies mutant N (1-based) to the file under TREE

The list's format is described at the top of tests/mutants.txt. A fragment
that is not found, or found more than once, is an error: the mutant no
longer applies and must be updated, never counted as a pass.
"""
import sys

FIELDS = ("file", "find", "repl", "why")


def parse(path):
    mutants, cur = [], None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#") or line.strip() == "":
                continue
            if line.startswith("== "):
                cur = {"id": line[3:].strip(), "line": lineno}
                mutants.append(cur)
                continue
            key, sep, value = line.partition(":")
            if cur is None or sep == "" or key not in FIELDS:
                sys.exit(f"{path}:{lineno}: expected '== id' or one of {', '.join(f + ':' for f in FIELDS)}")
            if key in ("find", "repl"):
                value = value[1:] if value.startswith(" ") else value
            else:
                value = value.strip()
            # find: and repl: may repeat; each repetition is one more line of the fragment.
            cur[key] = cur[key] + "\n" + value if key in cur and key in ("find", "repl") else value
    ids = set()
    for m in mutants:
        missing = [k for k in FIELDS if k not in m]
        if missing:
            sys.exit(f"{path}:{m['line']}: mutant {m['id']} lacks {', '.join(missing)}")
        if m["id"] in ids:
            sys.exit(f"{path}:{m['line']}: mutant id {m['id']} is used twice")
        if m["find"] == m["repl"]:
            sys.exit(f"{path}:{m['line']}: mutant {m['id']} replaces its fragment with itself")
        ids.add(m["id"])
    return mutants


def occurrences(tree, m):
    try:
        with open(f"{tree}/{m['file']}", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return None, str(e)
    return text, text.count(m["find"])


def check(mutants, tree, which):
    bad = 0
    for n in which:
        m = mutants[n - 1]
        text, count = occurrences(tree, m)
        if text is None:
            print(f"mutant {n} ({m['id']}) no longer applies: {count}", file=sys.stderr)
            bad += 1
        elif count != 1:
            how = "fragment not found" if count == 0 else f"fragment found {'twice' if count == 2 else f'{count} times'}"
            print(f"mutant {n} ({m['id']}) no longer applies: {how} in {m['file']}", file=sys.stderr)
            bad += 1
    return bad


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, mutants = sys.argv[1], parse(sys.argv[2])
    if cmd == "list":
        for n, m in enumerate(mutants, 1):
            print(f"{n}\t{m['id']}\t{m['file']}\t{m['why']}")
    elif cmd == "check":
        which = [int(a) for a in sys.argv[4:]] or range(1, len(mutants) + 1)
        sys.exit(1 if check(mutants, sys.argv[3], which) else 0)
    elif cmd == "apply":
        tree, n = sys.argv[3], int(sys.argv[4])
        if check(mutants, tree, [n]):
            sys.exit(1)
        m = mutants[n - 1]
        text, _ = occurrences(tree, m)
        with open(f"{tree}/{m['file']}", "w", encoding="utf-8") as f:
            f.write(text.replace(m["find"], m["repl"], 1))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
