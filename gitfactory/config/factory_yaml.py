"""factory.yaml: the factory's configuration, read only from the factory branch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from gitfactory.config.agents import AgentSpec, DispatchConfig, parse_agents, parse_dispatch
from gitfactory.config.gates import COMMAND, Gate, parse_gates
from gitfactory.config.notify import DEFAULT as DEFAULT_NOTIFY
from gitfactory.config.notify import Rule, parse_notify
from gitfactory.config.peers import Peer, parse_peers
from gitfactory.config.workflows import DEFAULT_WORKFLOW, SIMPLE, Step, Workflow, parse_workflows
from gitfactory.errors import ConfigError, FactoryError, NotInitializedError
from gitfactory.resources import template_file
from gitfactory.store import schemas
from gitfactory.store.actors import slug
from gitfactory.store.records import FACTORY_DIR

if TYPE_CHECKING:
    from gitfactory.store.branch import Commit
    from gitfactory.store.factory import Factory

CONFIG_PATH = f"{FACTORY_DIR}/factory.yaml"
CHANGED = "config.changed"  # the event committed with every change made through gitfactory
PROTOCOL_VERSION = "0.4"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SIZE_RE = re.compile(r"^(\d+) ?(B|KiB|MiB)?$")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024 * 1024}
MIN_MAX_BODY = 64 * 1024
MAX_BYTES = 1024 * 1024  # of factory.yaml: what runs fits in far less


@dataclass(frozen=True)
class MailConfig:
    max_body: int = 1024 * 1024  # bytes of a message body
    ack_timeout_ms: int = 3_600_000
    unverified: str = "deliver"  # or "quarantine": mail nothing vouches for


@dataclass(frozen=True)
class SyncConfig:
    """Sharing the factory with other clones through a git remote (SPEC §19)."""

    remote: str | None = None  # None: `gitfactory sync` uses origin; claims stay local
    interval_ms: int = 5_000
    offline_claims: str = "wait"  # or "local"


@dataclass(frozen=True)
class FactoryConfig:
    name: str
    protocol: str
    workflows: dict[str, Workflow] = field(default_factory=dict)
    mail: MailConfig = MailConfig()
    watch: tuple[str, ...] = ("*",)
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    gates: dict[str, Gate] = field(default_factory=dict)
    # Signing keys (OpenSSH public key lines) by actor address or role: trust.signers.
    signers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sync: SyncConfig = SyncConfig()
    peers: dict[str, Peer] = field(default_factory=dict)  # other factories (SPEC §20)
    notify: tuple[Rule, ...] = DEFAULT_NOTIFY  # which events reach a person, and how

    def gate(self, step: Step) -> Gate:
        """The gate a step runs: the one its ``gate:`` names, else that text as a command."""
        assert step.gate is not None
        found = self.gates.get(step.gate)
        return found or Gate(name=step.name, type=COMMAND, command=step.gate)

    def workflow(self, name: str | None) -> Workflow:
        """The named workflow; the default one (or a one-step one) when name is None."""
        if name is None:
            return self.workflows.get(DEFAULT_WORKFLOW, SIMPLE)
        if name not in self.workflows:
            raise ConfigError(
                f"no workflow {name!r} in {CONFIG_PATH}",
                hint=f"defined: {', '.join(self.workflows) or 'none'}",
            )
        return self.workflows[name]


# The last factory.yaml parsed for each open factory, by its bytes: YAML is slow to
# load, and a daemon or a server asks for the configuration at every step.
_parsed: WeakKeyDictionary[Factory, tuple[bytes, FactoryConfig]] = WeakKeyDictionary()


def load(factory: Factory) -> FactoryConfig:
    """factory.yaml at the factory branch's tip: the only configuration that decides
    what runs (never a copy from a checkout or another branch)."""
    tip = factory.require_tip()
    data = factory.store.snapshot(tip).read(CONFIG_PATH)
    if data is None:
        raise NotInitializedError(
            f"the '{factory.branch}' branch has no {CONFIG_PATH}",
            hint="run `gitfactory init` to add it",
        )
    cached = _parsed.get(factory)
    if cached is None or cached[0] != data:
        cached = (data, parse(data, f"{factory.branch}:{CONFIG_PATH}"))
        _parsed[factory] = cached
    return cached[1]


def parse(data: bytes, source: str = CONFIG_PATH) -> FactoryConfig:
    """Load and validate factory.yaml; errors name ``source`` with line and column."""
    from gitfactory.store import yaml

    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"{source}: {len(data):,} bytes, over the limit of {MAX_BYTES:,} for factory.yaml"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason})") from None
    doc: Any = yaml.load(text, source)
    if doc is None:
        doc = {}
    try:
        plain = _plain(doc)
    except RecursionError:  # a document that holds itself (&a [*a]) or nests too deep
        raise ConfigError(f"{source}: a value refers to itself, or nests too deep") from None
    violation = schemas.check("factory", plain)
    if violation is not None:
        where = yaml.location(doc, violation.path, source)
        field = f"'{violation.field}' " if violation.field else ""
        raise ConfigError(
            f"{where}: {field}{violation.reason}",
            hint="every key is explained in the comments of the file `gitfactory init` wrote",
        )
    return FactoryConfig(
        name=str(doc["name"]),
        protocol=str(doc["protocol"]),
        workflows=parse_workflows(doc, source),
        mail=_mail(doc, source),
        watch=tuple(str(p) for p in doc.get("watch", ("*",))),
        agents=parse_agents(doc, source),
        dispatch=parse_dispatch(doc, source),
        gates=_gates(doc, source),
        signers=_signers(doc, source),
        sync=_sync(doc, source),
        peers=parse_peers(doc, source, str(doc["name"])),
        notify=parse_notify(doc, source),
    )


def _gates(doc: Any, source: str) -> dict[str, Gate]:
    """The declared gates; a scenario gate's role must be one that agents play."""
    from gitfactory.store import yaml

    gates = parse_gates(doc, source)
    roles = {str(a.get("role", "")) for a in (doc.get("agents") or {}).values()}
    for gate in gates.values():
        if gate.type == "scenario" and doc.get("agents") and gate.role not in roles:
            where = yaml.location(doc, ["gates", gate.name, "role"], source)
            raise ConfigError(
                f"{where}: no agent plays the role {gate.role!r} that plays the scenarios",
                hint=f"agents play: {', '.join(sorted(roles))}",
            )
    return gates


def _signers(doc: Any, source: str) -> dict[str, tuple[str, ...]]:
    """trust.signers: keys by actor address (role/name) or role."""
    import re

    from gitfactory.store import yaml

    out = {}
    for who, keys in ((doc.get("trust") or {}).get("signers") or {}).items():
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?", str(who)):
            where = yaml.location(doc, ["trust", "signers", who], source)
            raise ConfigError(
                f"{where}: {who!r} is neither an actor (role/name) nor a role",
                hint='e.g. "human/lead": [ssh-ed25519 AAAA...] or human: [...]',
            )
        out[str(who)] = tuple(str(k) for k in keys)
    return out


def _mail(doc: Any, source: str) -> MailConfig:
    from gitfactory.store import records, yaml
    from gitfactory.store.clock import parse_duration

    section = doc.get("mail") or {}
    config = MailConfig()
    if "max_body" in section:
        match = _SIZE_RE.match(str(section["max_body"]))
        assert match is not None  # the schema's pattern
        size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
        if not MIN_MAX_BODY <= size <= records.MAX_MESSAGE_BODY:
            where = yaml.location(doc, ["mail", "max_body"], source)
            raise ConfigError(
                f"{where}: 'mail.max_body' is {size} bytes; it must be between 64KiB and 16MiB"
            )
        config = replace(config, max_body=size)
    if "ack_timeout" in section:
        config = replace(config, ack_timeout_ms=parse_duration(str(section["ack_timeout"])))
    if "unverified" in section:
        config = replace(config, unverified=str(section["unverified"]))
    return config


def _sync(doc: Any, source: str) -> SyncConfig:
    from gitfactory.store import yaml
    from gitfactory.store.clock import parse_duration

    section = doc.get("sync") or {}
    interval = SyncConfig.interval_ms
    if "interval" in section:
        interval = parse_duration(str(section["interval"]))
        if not 200 <= interval <= 3_600_000:
            where = yaml.location(doc, ["sync", "interval"], source)
            raise ConfigError(f"{where}: 'sync.interval' must be between 200ms and 1h")
    remote = section.get("remote")
    return SyncConfig(
        remote=str(remote) if remote is not None else None,
        interval_ms=interval,
        offline_claims=str(section.get("offline_claims", SyncConfig.offline_claims)),
    )


def _plain(node: Any) -> Any:
    """ruamel's round-trip types as plain dicts, lists and scalars for validation."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"invalid factory name {name!r}",
            hint="use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit (for example {slug(name)!r})",
        )
    return name


def render(name: str, agents: dict[str, dict[str, str]] | None = None) -> bytes:
    """The commented factory.yaml that `gitfactory init` lays down, with ``agents``
    (name: entry, as :func:`gitfactory.config.agents.from_spec` makes them) in its
    ``agents:`` section; every comment of the template is kept."""
    text = template_file("factory.yaml").read_text("utf-8").replace("__NAME__", check_name(name))
    if agents:
        from gitfactory.store import yaml

        doc = yaml.load(text, "the factory.yaml template")
        doc["agents"] = {n: dict(entry) for n, entry in agents.items()}
        text = yaml.dump(doc)
    return text.encode("utf-8")


# -- changing it ----------------------------------------------------------------------


class ConfigMovedError(FactoryError):
    """factory.yaml changed on the branch while it was being edited."""


def warnings(config: FactoryConfig) -> list[str]:
    """What is valid but probably not meant: steps nobody will take, gates that are
    not declared. Each line names the workflow and the step."""
    from gitfactory.config.workflows import ANY_ROLE

    roles = {a.role for a in config.agents.values()}
    out = []
    for workflow in config.workflows.values():
        for step in workflow.steps.values():
            where = f"workflow {workflow.name!r}, step {step.name!r}"
            by_agent = step.gate is None and step.action is None and step.role != ANY_ROLE
            if by_agent and config.agents and step.role not in roles:
                out.append(
                    f"{where}: no agent plays the role {step.role!r}, so the daemon never "
                    f"starts one; an agent must ask for it (`gitfactory next --as "
                    f"{step.role}/NAME`)"
                )
            if step.gate and step.gate not in config.gates and " " not in step.gate.strip():
                out.append(
                    f"{where}: gate {step.gate!r} is not declared under gates:, so it runs "
                    f"as the command `{step.gate}`"
                )
    return out


def write(
    factory: Factory,
    data: bytes,
    actor: str,
    *,
    based_on: bytes | None = None,
    source: str = "the new factory.yaml",
) -> Commit | None:
    """Commit ``data`` as factory.yaml, with a ``config.changed`` event, in one commit
    under the CAS; None if the branch already holds these bytes.

    ``data`` must parse (a ConfigError names ``source``, line and column), so a change
    made here never leaves the factory unable to read its configuration. With
    ``based_on`` (the text an edit started from), the write is refused if the branch
    holds other bytes by the time it lands: someone changed it meanwhile.
    """
    from gitfactory.store import actors, records
    from gitfactory.store.branch import Change, Snapshot
    from gitfactory.store.log import Draft, stamp

    actors.check(actor, "actor")
    new = parse(data, source)
    factory.require_tip()

    def build(snap: Snapshot) -> Change | None:
        current = snap.read(CONFIG_PATH)
        if current == data:
            return None
        if based_on is not None and current != based_on:
            raise ConfigMovedError(
                f"{CONFIG_PATH} changed on {factory.branch} while you edited it; "
                "nothing was committed",
                hint="run the edit again on the new text",
            )
        event = stamp(Draft(kind=CHANGED, actor=actor, text=f"factory.yaml changed by {actor}",
                            data={"bytes": len(data), "agents": sorted(new.agents),
                                  "gates": sorted(new.gates),
                                  "workflows": sorted(new.workflows)}))  # fmt: skip
        return Change(
            {CONFIG_PATH: data, event.path: records.encode(event.to_record())},
            f"config: edit factory.yaml by {actor}",
            trailers=[("Factory-Record", f"event {event.id}")],
            replace=frozenset({CONFIG_PATH}),
        )

    return factory.store.transact(build)
