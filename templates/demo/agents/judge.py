"""Scripted judge of the demo: a real program, no LLM.

A judge gate gives it the task, the criteria and the branch's diff as JSON on its
standard input; it prints its verdict {"pass", "score", "reasons"} as JSON. An LLM
CLI would read the same input; this one scores what it can check by itself: the
change is small, it touches what the task names, and it adds no debugging leftovers.
"""

import json
import sys


def main():
    given = json.load(sys.stdin)
    diff, title = given["diff"], given["task"]["title"]
    changed = [line for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    reasons, score = [], 1.0
    if not changed:
        reasons.append("the branch changes nothing")
        score = 0.0
    if len(changed) > 40:
        reasons.append(f"{len(changed)} changed lines: more than a small task needs")
        score -= 0.5
    if any("print(" in line or "breakpoint(" in line for line in changed if line[0] == "+"):
        reasons.append("debugging leftovers (print or breakpoint) in the change")
        score -= 0.4
    wanted = "stats.py" if "mean" in title and "README" not in title else "README.md"
    if f"b/{wanted}" not in diff:
        reasons.append(f"the task is about {wanted}, which the change does not touch")
        score -= 0.5
    score = max(score, 0.0)
    if not reasons:
        reasons.append(f"a small change to {wanted} ({len(changed)} lines), as the task asks")
    # Standard output is the verdict; what a judge says besides goes to standard error,
    # which the gate keeps as its transcript.
    print(f"judged {len(changed)} changed lines of task {given['task']['id'][:8]}: "
          f"score {score:.2f}", file=sys.stderr)
    print(json.dumps({"pass": score >= 0.5, "score": round(score, 2), "reasons": reasons}))


if __name__ == "__main__":
    main()
