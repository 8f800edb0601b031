"""Scripted coder of the two-factory demo: a real program, no LLM.

The daemon starts it in the task's worktree. In the api factory it adds the endpoint
the web factory asked for; in the web factory it writes the page, built against the
commit where the api's work landed (which reached the web factory as news of the
proxy task its page depends on). Then it commits and ends its step.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

FACTORY = [sys.executable, "-m", "gitfactory"]
TASK = os.environ["GITFACTORY_TASK"]


def factory(*args):
    out = subprocess.run([*FACTORY, *args], check=True, capture_output=True, text=True)
    return out.stdout


def show(task_id):
    return json.loads(factory("task", "show", task_id, "--json"))


def api_work(task):
    Path("users_v2.py").write_text(
        '"""GET /v2/users: the users, a page at a time (asked for by the web factory)."""\n\n'
        "USERS = [{'id': 1, 'name': 'ada'}, {'id': 2, 'name': 'bob'}]\n\n\n"
        "def list_users(after=0, limit=50):\n"
        "    return [u for u in USERS if u['id'] > after][:limit]\n"
    )
    return f"users_v2.py: {task['title']}"


def web_work(task):
    landed = "unknown"
    for dep in task["depends_on"]:
        remote = show(dep).get("remote") or {}
        merge = remote.get("merge") or {}
        if merge.get("commit"):
            landed = f"{remote['peer']}@{merge['commit'][:12]} ({merge.get('branch', '?')})"
    Path("users.html").write_text(
        "<!-- the users page: calls GET /v2/users -->\n"
        f"<!-- built against {landed} -->\n<ul id='users'></ul>\n"
    )
    return f"users.html against {landed}"


def main():
    task = show(TASK)
    name = Path("factory.name").read_text().strip() if Path("factory.name").exists() else ""
    what = api_work(task) if name == "api" else web_work(task)
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-qm", what], check=True)
    print(what, flush=True)
    factory("step", "done", TASK, "--note", what)


if __name__ == "__main__":
    main()
