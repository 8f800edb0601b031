"""gitfactory config …"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitfactory.cli import Context, Group, output, text
from gitfactory.config import factory_yaml
from gitfactory.config.factory_yaml import CONFIG_PATH, FactoryConfig
from gitfactory.store import actors
from gitfactory.store.factory import Factory

_HELP = f"""factory.yaml: what runs in this factory (agents, gates, workflows, dispatch).

It lives at {CONFIG_PATH} on the factory branch, not in your checkout, and it
is the only file that decides which commands run (content from agents, other
branches or other factories never does). `config edit` changes it in one commit
with a `config.changed` event, after checking it: a file that does not parse is
never committed, so the daemon can always read its configuration. The daemon
picks up a change at its next tick.

\b
Examples:
  gitfactory config show                      print it as committed
  gitfactory config edit                      change it in $EDITOR, checked before commit
  gitfactory config edit --file factory.yaml  replace it with a file you prepared
  gitfactory config check                     what it declares, and what looks unintended
  gitfactory config check --file new.yaml     check a file before you commit it
  git log -p factory -- {CONFIG_PATH}   every version, with plain git
"""


@click.group("config", cls=Group, help=_HELP)
def config_group() -> None:
    pass


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print {path, commit, text} as JSON.")
@click.pass_obj
def show_cmd(obj: Context, as_json: bool) -> None:
    """Print factory.yaml as committed on the factory branch, byte for byte."""
    factory = obj.factory
    tip, data = _current(factory)
    if as_json:
        output.emit_json({"path": CONFIG_PATH, "commit": tip,
                          "text": data.decode("utf-8", "replace")})  # fmt: skip
        return
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@config_group.command("check")
@text.file_option
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print {source, name, agents, gates, workflows, warnings} as JSON.",
)  # fmt: skip
@click.pass_obj
def check_cmd(obj: Context, source: Path | None, as_json: bool) -> None:
    """Check factory.yaml (or --file) and say what it declares.

    An error names the file, line and column, and exits 2. Warnings (exit 0) point
    at what is valid but probably not meant: a workflow step of a role no agent
    plays, a `gate:` that is not declared and so runs as a command, an agent or gate
    whose program is not found (`gitfactory doctor` checks the rest of the setup).
    """
    if source is None:
        where = f"{obj.factory.branch}:{CONFIG_PATH}"
        cfg = factory_yaml.load(obj.factory)
    else:
        where = "standard input" if str(source) == "-" else str(source)
        cfg = factory_yaml.parse(text.read_source(source), where)
    warned = factory_yaml.warnings(cfg) + _missing_programs(obj, cfg)
    if as_json:
        output.emit_json({"source": where, **_declared(cfg), "warnings": warned})
        return
    output.echo(f"{where}: valid (factory {cfg.name}, protocol {cfg.protocol})")
    for key, names in _declared(cfg).items():
        if isinstance(names, list):
            output.echo(f"  {key:<10}{', '.join(names) or '-'}")
    for line in warned:
        output.echo(f"warning: {line}")


@config_group.command("edit")
@text.file_option
@click.option("--as", "actor", metavar="ADDRESS", help="Who changes it (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print {path, changed, commit} as JSON.")
@click.pass_obj
def edit_cmd(obj: Context, source: Path | None, actor: str | None, as_json: bool) -> None:
    """Change factory.yaml in one commit on the factory branch, after checking it.

    Without --file, $EDITOR opens on the committed text; leaving it unchanged
    commits nothing. A text that does not parse is not committed: the error names
    its line and column, and your text is kept in a file whose path is printed,
    so you can fix it and commit it with --file. If someone changed factory.yaml
    while you edited it, nothing is committed either (exit 1), and your text is
    kept the same way.
    """
    factory = obj.factory
    who = actors.who(factory, actor)
    based_on = None
    if source is None:
        _, based_on = _current(factory)
        data = text.edited("factory.yaml", based_on, "", extension=".yaml")
        if data is None:
            text.report_edit("factory.yaml", CONFIG_PATH, None, None, as_json)
            return
        where = "the edited factory.yaml"
    else:
        data = text.read_source(source)
        where = "standard input" if str(source) == "-" else str(source)
    with text.keeping(factory, "factory.yaml", data, from_editor=source is None):
        cfg = factory_yaml.parse(data, where)
        _refuse_stranding(factory, cfg)
        commit = factory_yaml.write(factory, data, who, based_on=based_on, source=where)
    text.report_edit("factory.yaml", CONFIG_PATH, data, commit, as_json)
    if commit is not None and not as_json:
        for line in factory_yaml.warnings(cfg) + _missing_programs(obj, cfg):
            output.echo(f"warning: {line}")


def _refuse_stranding(factory: Factory, cfg: FactoryConfig) -> None:
    """Refuse a text that drops a workflow or step a task still in play is at."""
    from gitfactory.errors import ConfigError
    from gitfactory.plan import states
    from gitfactory.plan.tasks import TERMINAL

    stranded = []
    for row in states.task_states(factory):
        if row["state"] in TERMINAL:
            continue
        name = row["task"]["workflow"]
        flow = cfg.workflow(None) if name is None else cfg.workflows.get(name)
        if flow is None:
            stranded.append(f"task {row['task']['id'][:8]} follows workflow {name!r}")
        elif flow is not None and row["step"] is not None and row["step"] not in flow.steps:
            stranded.append(f"task {row['task']['id'][:8]} is at step {row['step']!r}")
    if stranded:
        more = f" (and {len(stranded) - 3} more)" if len(stranded) > 3 else ""
        raise ConfigError(
            f"the new factory.yaml drops what tasks still use: {'; '.join(stranded[:3])}{more}",
            hint="keep it until they move on, or move each first: gitfactory task cancel ID, "
            "then gitfactory task retry ID --from STEP",
        )


def _missing_programs(obj: Context, cfg: FactoryConfig) -> list[str]:
    """The agents and gates whose program is not there, as `doctor` says it."""
    from gitfactory.errors import FactoryError
    from gitfactory.run import doctor

    try:
        place = doctor.place_of(obj.factory, cfg)
    except FactoryError:  # --file outside a repository: only PATH can be searched
        place = None
    checks = list(doctor.commands(cfg, place, versions=False))
    if place is not None and cfg.sync.remote:
        from gitfactory.store import remote

        try:
            remote.resolve(obj.factory, cfg.sync.remote)
        except FactoryError as exc:
            fix = f"`git remote add {cfg.sync.remote} URL` in every clone"
            checks.append(doctor.Check("sync.remote", doctor.PROBLEM, exc.message, fix))
    return [f"{c.name}: {c.detail} (fix: {c.fix})" for c in checks if not c.ok]


def _current(factory: Factory) -> tuple[str, bytes]:
    tip = factory.require_tip()
    data = factory.store.snapshot(tip).read(CONFIG_PATH)
    if data is None:
        factory_yaml.load(factory)  # raises the error that says how to add it
        raise AssertionError("unreachable")
    return str(tip), data


def _declared(cfg: FactoryConfig) -> dict[str, object]:
    return {
        "name": cfg.name,
        "protocol": cfg.protocol,
        "agents": [a.address for a in cfg.agents.values()],
        "gates": [f"{g.name} ({g.type})" for g in cfg.gates.values()],
        "workflows": [f"{w.name}: {' -> '.join(w.steps)}" for w in cfg.workflows.values()],
    }
