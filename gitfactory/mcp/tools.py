"""The tools the MCP server offers: each one a CLI command, its input schema, and
how its arguments become that command's argv (values as ``--option=value`` and
positional arguments after ``--``, never as options of their own)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INSTRUCTIONS = """\
gitfactory is the factory's shared state on git: tasks, workflow steps, mail, the log,
artifacts and living documents. Work loop: call `next` to get (and claim) your step;
do it in your worktree and commit; `task_heartbeat` while it takes long; `task_ask`
if you need a person; `step_done` with outcome success or failure and a note. Talk to
other agents with `mail_send` (to role/name, or role/* for every agent of a role) and
read yours with `mail_inbox` and `mail_read`. Every tool acts as the agent this
server was started for."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    properties: dict[str, Any]
    required: tuple[str, ...]
    argv: Callable[[dict[str, Any]], list[str]]  # the CLI arguments for a call
    raw: bool = False  # the command prints text, not JSON
    stdin: str | None = None  # the argument that goes to the command's standard input

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": {
                "type": "object",
                "properties": self.properties,
                "required": list(self.required),
                "additionalProperties": False,
            },
        }


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _opt(args: dict[str, Any], key: str, flag: str) -> list[str]:
    value = args.get(key)
    return [] if value is None else [f"{flag}={value}"]


def _many(args: dict[str, Any], key: str, flag: str) -> list[str]:
    return [f"{flag}={v}" for v in args.get(key) or []]


def _yes(args: dict[str, Any], key: str, flag: str) -> list[str]:
    return [flag] if args.get(key) else []


_TASK = _s("A task id, or any unique prefix of it (listings show the shortest).")
_MESSAGE = _s(
    "A message id, or any unique prefix of it (the inbox shows the shortest), or its last 8 "
    "characters."
)
_STRINGS = {"type": "array", "items": {"type": "string"}}

TOOLS = [
    Tool("next", "What do I do now? Returns the step you hold, or claims the top ready "
         "step for your role (atomically: no two agents get the same one). The result has "
         "the task, the step's instructions, how you know you are done, your lease, and "
         "in `previous` how the step before ended, with the report of a failed gate or "
         "merge when that sent the task back to you: read it, it says what to fix. "
         '{"work": null} means nothing is ready for you now.',
         {}, (), lambda a: ["next"]),
    Tool("step_done", "Finish the workflow step you hold: the outcome decides where the "
         "task goes next (a failure goes back along the workflow's on_failure edge).",
         {"task": _TASK, "outcome": _s("How the step ended.", enum=["success", "failure"]),
          "note": _s("What you did, or why it failed (one or two sentences).")},
         ("task", "outcome"),
         lambda a: ["step", "done", *_opt(a, "outcome", "--outcome"), *_opt(a, "note", "--note"),
                    "--", a["task"]]),
    Tool("task_heartbeat", "Renew the lease of a task you hold (do it well before it runs "
         "out on long work, or the task goes back to the queue).",
         {"task": _TASK}, ("task",), lambda a: ["task", "heartbeat", "--", a["task"]]),
    Tool("task_ask", "Put a task you hold on hold with a question for a person; it waits "
         "in state input_required until someone answers.",
         {"task": _TASK, "question": _s("The question, self-contained.")},
         ("task", "question"), lambda a: ["task", "ask", "--", a["task"], a["question"]]),
    Tool("task_show", "One task: state, workflow step, holder, body, history, artifacts.",
         {"task": _TASK}, ("task",), lambda a: ["task", "show", "--", a["task"]]),
    Tool("task_list", "Tasks, oldest first, optionally in one state or with one label.",
         {"state": _s("Only tasks in this state.", enum=["submitted", "working",
                      "input_required", "completed", "failed", "canceled", "rejected"]),
          "label": _s("Only tasks with this label.")},
         (), lambda a: ["task", "list", *_opt(a, "state", "--state"),
                        *_opt(a, "label", "--label")]),
    Tool("task_add", "Add a task to the plan (a follow-up you found, say); you are its "
         "requester.",
         {"title": _s("One line."), "body": _s("What is to be done, in markdown."),
          "priority": {"type": "integer", "minimum": 0, "maximum": 9,
                       "description": "0 is the most urgent; default 2."},
          "labels": {**_STRINGS, "description": "Lowercase labels."},
          "depends_on": {**_STRINGS, "description": "Tasks that must be completed first."}},
         ("title",),
         lambda a: ["task", "add", *_opt(a, "body", "--body"), *_opt(a, "priority", "--priority"),
                    *_many(a, "labels", "--label"), *_many(a, "depends_on", "--depends-on"),
                    "--", a["title"]]),
    Tool("mail_send", "Send a markdown message to agents (role/name), every agent of a "
         "role (role/*) or people (human/name).",
         {"to": {**_STRINGS, "minItems": 1, "description": "Recipients."},
          "subject": _s("One line."), "body": _s("The message, in markdown."),
          "cc": {**_STRINGS, "description": "Copies to."},
          "task": _s("The task it is about."),
          "ack_required": {"type": "boolean",
                           "description": "Every recipient in `to` must acknowledge."},
          "priority": _s("Default normal.", enum=["low", "normal", "high", "urgent"])},
         ("to", "subject"),
         lambda a: ["mail", "send", *_opt(a, "subject", "--subject"), "--file=-",
                    *_many(a, "cc", "--cc"), *_opt(a, "task", "--task"),
                    *_yes(a, "ack_required", "--ack-required"),
                    *_opt(a, "priority", "--priority"), "--", *a["to"]],
         stdin="body"),
    Tool("mail_inbox", "Your messages (and your role's), newest first, with read and "
         "acknowledged flags. Listing marks nothing as read.",
         {"unread": {"type": "boolean", "description": "Only messages you have not read."},
          "unacked": {"type": "boolean",
                      "description": "Only messages waiting for your acknowledgement."}},
         (), lambda a: ["mail", "inbox", *_yes(a, "unread", "--unread"),
                        *_yes(a, "unacked", "--unacked")]),
    Tool("mail_read", "Read one message (its body), and record that you read it.",
         {"id": _MESSAGE}, ("id",), lambda a: ["mail", "read", "--", a["id"]]),
    Tool("mail_ack", "Acknowledge a message that asked for it.",
         {"id": _MESSAGE}, ("id",), lambda a: ["mail", "ack", "--", a["id"]]),
    Tool("mail_reply", "Answer a message, in its thread, to its sender.",
         {"id": _MESSAGE, "body": _s("The answer, in markdown.")}, ("id", "body"),
         lambda a: ["mail", "reply", "--file=-", "--", a["id"]], stdin="body"),
    Tool("log_append", "Write an event to the factory's execution log (what you did or "
         "found, for the record).",
         {"kind": _s("What happened, e.g. test.run or note: lowercase, dots allowed."),
          "text": _s("One line for people."), "task": _s("The task it is about."),
          "data": {"type": "object", "description": "Structured data (any JSON values)."}},
         ("kind",),
         lambda a: ["log", "append", *_opt(a, "task", "--task"),
                    *[f"--data={k}:={json.dumps(v)}" for k, v in (a.get("data") or {}).items()],
                    "--", a["kind"], *([a["text"]] if a.get("text") else [])]),
    Tool("artifact_put", "Store a text file for a task (a log, a report, notes) in the "
         "factory branch, with a manifest.",
         {"task": _TASK, "name": _s("Its file name, e.g. benchmark.md."),
          "text": _s("The content.")},
         ("task", "name", "text"),
         lambda a: ["artifact", "put", f"--name={a['name']}", "--", a["task"], "-"],
         stdin="text"),
    Tool("artifact_list", "Artifacts (transcripts, gate reports, verdicts), of one task or "
         "all.", {"task": _TASK}, (),
         lambda a: ["artifact", "list", *(["--", a["task"]] if a.get("task") else [])]),
    Tool("artifact_get", "The content of a text artifact (a gate's report, say).",
         {"id": _s("An artifact id, any unique prefix of it, or its last 8 characters.")}, ("id",),
         lambda a: ["artifact", "get", "--", a["id"]], raw=True),
    Tool("docs_show", "A living document of this factory: best-practices, start-sequence, "
         "history, or any other the list in `status` names.",
         {"name": _s("The document's name.")}, ("name",),
         lambda a: ["docs", "show", "--", a["name"]], raw=True),
    Tool("status", "The factory at a glance: tasks by state, who holds what, open "
         "questions, whether the daemon runs.", {}, (), lambda a: ["status"]),
]  # fmt: skip
BY_NAME = {t.name: t for t in TOOLS}
# The tools whose command acts as someone: the server adds --as for them.
AS_AGENT = frozenset(
    {"next", "step_done", "task_heartbeat", "task_ask", "task_add", "mail_send", "mail_inbox",
     "mail_read", "mail_ack", "mail_reply", "log_append", "artifact_put"}
)  # fmt: skip
