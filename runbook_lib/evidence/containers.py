"""Container checks for the GGEN MCP runbook: state, `docker ps`, logs and restart.

Every public function returns a result instead of raising when the engine is unreachable or a
container is missing, so a notebook cell can show "docker unavailable: ..." and carry on
to the next check rather than aborting the whole runbook.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import docker
from docker.errors import APIError, DockerException, NotFound
from requests.exceptions import RequestException

if TYPE_CHECKING:
    import pandas as pd
    from docker import DockerClient
    from docker.models.containers import Container

# Everything an unreachable, refusing or misconfigured engine can raise through the SDK.
ENGINE_ERRORS = (DockerException, RequestException, OSError, ValueError)

_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _why(exc: BaseException) -> str:
    """A one-line reason: SDK messages wrap multi-line HTTP errors."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _unavailable(exc: BaseException) -> str:
    return f"docker unavailable: {_why(exc)}"


def _engine_error(exc: BaseException) -> str:
    """Tell an engine that answered with an error apart from one that could not be reached."""
    if isinstance(exc, APIError):
        return f"docker error: {_why(exc)}"
    return _unavailable(exc)


def _missing(name: str) -> str:
    return f"no such container: {name}"


def _split_time(raw: str | None) -> tuple[datetime, int] | None:
    """Docker's RFC 3339 nano time as (aware datetime, nanoseconds) for exact ordering."""
    m = _TIME.match((raw or "").strip())
    if not m or m.group(1).startswith("0001-"):  # Go's zero time: "never"
        return None
    base, frac, zone = m.groups()
    ns = int((frac or "").ljust(9, "0")[:9])
    dt = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return dt.replace(microsecond=ns // 1000).astimezone(UTC), ns


def parse_time(raw: str | None) -> datetime | None:
    """Docker's timestamp as an aware UTC datetime; None for empty or "0001-01-01T00:00:00Z"."""
    split = _split_time(raw)
    return split[0] if split else None


def _utc(dt: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken as local time, like `datetime.timestamp()`."""
    return dt.astimezone(UTC)


def client(
    base_url: str | None = None, timeout: float = 5
) -> tuple[DockerClient | None, str | None]:
    """A connected client and None, or None and why not (DOCKER_HOST applies if no base_url)."""
    try:  # the SDK asks the engine for its API version here, so this also proves it answers
        if base_url:
            return docker.DockerClient(base_url=base_url, timeout=timeout), None
        return docker.from_env(timeout=timeout), None
    except ENGINE_ERRORS as exc:
        where = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return None, f"{_unavailable(exc)} (engine: {where})"


def _find(dc: DockerClient, name: str) -> Container:
    """The container `name` (or id); `label:KEY=VALUE` finds the newest running one with that
    label (a service redeployed under new names keeps its label)."""
    if not name.startswith("label:"):
        return dc.containers.get(name)
    found = dc.containers.list(filters={"label": name.removeprefix("label:")})
    if not found:
        raise NotFound(f"no running container has the label {name.removeprefix('label:')}")
    return max(found, key=lambda c: c.attrs.get("Created", ""))


@dataclass(frozen=True)
class ContainerState:
    """What `docker inspect` (plus one `docker stats` sample) says about one container.

    `exists` is None when the engine could not be asked; `error` then says why. For a process
    that exits within milliseconds Docker may record `finished_at` slightly before `started_at`
    (moby/moby#45445); the values are shown as Docker has them.
    """

    name: str
    exists: bool | None = None
    id: str | None = None
    image: str | None = None
    status: str | None = None
    running: bool = False
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    memory_usage_bytes: int | None = None
    memory_limit_bytes: int | None = None
    pid: int | None = None
    health: str | None = None

    @property
    def crashed(self) -> bool:
        """Stopped on its own terms badly: non-zero exit (incl. crash-looping) or OOM-killed."""
        stopped = self.status in ("exited", "dead", "restarting")
        return self.oom_killed or (stopped and self.exit_code not in (None, 0))

    @property
    def sigkilled(self) -> bool:
        """Exit 137: the OOM killer, `docker kill` or a stop timeout.

        Docker misses OOMKilled when the OOM comes before containerd watches the cgroup (in the
        first moments after start), so under a memory limit read 137 as a possible OOM.
        """
        return self.exit_code == 137

    @property
    def memory_percent(self) -> float | None:
        if not self.memory_usage_bytes or not self.memory_limit_bytes:
            return None
        return 100.0 * self.memory_usage_bytes / self.memory_limit_bytes

    def as_dict(self) -> dict[str, Any]:
        extra = {"crashed": self.crashed, "sigkilled": self.sigkilled}
        return {**asdict(self), **extra, "memory_percent": self.memory_percent}

    def to_frame(self) -> pd.DataFrame:
        """One field per row, which reads better in a notebook than one wide row."""
        import pandas as pd

        items = self.as_dict().items()
        return pd.DataFrame({"value": [v for _, v in items]}, index=[k for k, _ in items])


def _memory_usage(stats: dict[str, Any]) -> tuple[int | None, int | None]:
    """(usage, limit) as `docker stats` shows them: usage minus inactive page cache."""
    mem = stats.get("memory_stats") or {}
    usage = mem.get("usage")
    if usage is None:
        return None, mem.get("limit")
    detail = mem.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):  # cgroup v1, then v2
        if key in detail and detail[key] < usage:
            usage -= detail[key]
            break
    return usage, mem.get("limit")


def _from_attrs(name: str, attrs: dict[str, Any], stats: dict[str, Any] | None) -> ContainerState:
    st = attrs.get("State") or {}
    host = attrs.get("HostConfig") or {}
    status = st.get("Status")
    running = bool(st.get("Running"))
    usage, stats_limit = _memory_usage(stats) if stats else (None, None)
    limit = host.get("Memory") or (stats_limit if running else None)  # stats: host RAM if unset
    return ContainerState(
        name=(attrs.get("Name") or name).lstrip("/"),
        exists=True,
        id=attrs.get("Id"),
        image=(attrs.get("Config") or {}).get("Image") or attrs.get("Image"),
        status=status,
        running=running,
        exit_code=None if running or status == "created" else st.get("ExitCode"),
        oom_killed=bool(st.get("OOMKilled")),
        restart_count=int(attrs.get("RestartCount") or 0),
        started_at=parse_time(st.get("StartedAt")),
        finished_at=parse_time(st.get("FinishedAt")),
        error=st.get("Error") or None,
        memory_usage_bytes=usage,
        memory_limit_bytes=limit or None,
        pid=st.get("Pid") or None,
        health=(st.get("Health") or {}).get("Status"),
    )


def _one_shot_stats(container: Container) -> dict[str, Any] | None:
    """A single stats sample, or None: the container may stop between inspect and stats."""
    try:
        return container.stats(stream=False, one_shot=True)
    except ENGINE_ERRORS:
        return None


def state(name: str, *, base_url: str | None = None) -> ContainerState:
    """The state of container `name` (name or id), memory sampled only if it is running."""
    dc, err = client(base_url)
    if dc is None:
        return ContainerState(name=name, error=err)
    try:
        container = _find(dc, name)
        running = bool((container.attrs.get("State") or {}).get("Running"))
        stats = _one_shot_stats(container) if running else None
        return _from_attrs(name, container.attrs, stats)
    except NotFound:
        return ContainerState(name=name, exists=False, error=_missing(name))
    except ENGINE_ERRORS as exc:
        return ContainerState(name=name, error=_engine_error(exc))
    finally:
        dc.close()


@dataclass(frozen=True)
class ContainerList:
    """`docker ps -a | grep MATCH` as states (no memory samples: one stats call each is slow)."""

    items: list[ContainerState] = field(default_factory=list)
    error: str | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        cols = ["name", "image", "status", "exit_code", "oom_killed", "restart_count"]
        cols += ["started_at", "finished_at", "error"]
        rows = [{k: getattr(c, k) for k in cols} | {"crashed": c.crashed} for c in self.items]
        return pd.DataFrame(rows, columns=[*cols, "crashed"])


def list_containers(
    match: str | None = None, *, all: bool = True, base_url: str | None = None
) -> ContainerList:
    """Containers whose name contains `match` (all of them if None), stopped ones too by default."""
    dc, err = client(base_url)
    if dc is None:
        return ContainerList(error=err)
    try:
        found = dc.containers.list(all=all, ignore_removed=True)
        items = [_from_attrs(c.name, c.attrs, None) for c in found]
    except ENGINE_ERRORS as exc:
        return ContainerList(error=_engine_error(exc))
    finally:
        dc.close()
    items = [c for c in items if match is None or match in c.name]
    return ContainerList(items=sorted(items, key=lambda c: c.name))


class LogLine(NamedTuple):
    timestamp: datetime | None
    stream: str  # "stdout" or "stderr"
    text: str


@dataclass(frozen=True)
class ContainerLogs:
    """Log lines in time order, each with Docker's own receive timestamp and its stream."""

    name: str
    lines: list[LogLine] = field(default_factory=list)
    exists: bool | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.lines, columns=list(LogLine._fields))


def _parse_log(raw: bytes, stream: str) -> list[tuple[int, LogLine]]:
    """Split `timestamps=True` output into (sort key in ns, line)."""
    out: list[tuple[int, LogLine]] = []
    key = 0
    for row in raw.decode("utf-8", errors="replace").splitlines():
        stamp, _, text = row.partition(" ")
        split = _split_time(stamp)
        if split is None:  # no timestamp: keep the row, sorted just after the line before it
            out.append((key, LogLine(None, stream, row)))
            continue
        dt, ns = split
        key = int(dt.replace(microsecond=0).timestamp()) * 1_000_000_000 + ns
        out.append((key, LogLine(dt, stream, text)))
    return out


def logs(
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tail: int | None = 200,
    base_url: str | None = None,
) -> ContainerLogs:
    """The last `tail` lines (all if None) between `since` and `until`, both inclusive.

    Fetches stdout and stderr separately so each line knows its stream, then merges by time.
    """
    dc, err = client(base_url)
    if dc is None:
        return ContainerLogs(name=name, error=err)
    lo = _utc(since) if since else None
    hi = _utc(until) if until else None
    params: dict[str, Any] = {"timestamps": True, "tail": "all" if tail is None else tail}
    if lo:  # floats keep sub-second precision; the SDK truncates datetimes to seconds
        params["since"] = lo.timestamp()
    if hi:
        params["until"] = hi.timestamp()
    try:
        container = _find(dc, name)
        merged = _parse_log(container.logs(stdout=True, stderr=False, **params), "stdout")
        merged += _parse_log(container.logs(stdout=False, stderr=True, **params), "stderr")
    except NotFound:
        return ContainerLogs(name=name, exists=False, error=_missing(name))
    except ENGINE_ERRORS as exc:
        return ContainerLogs(name=name, error=_engine_error(exc))
    finally:
        dc.close()
    merged.sort(key=lambda pair: pair[0])
    lines = [
        line
        for _, line in merged
        if line.timestamp is None
        or ((lo is None or line.timestamp >= lo) and (hi is None or line.timestamp <= hi))
    ]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    return ContainerLogs(name=name, lines=lines, exists=True)


@dataclass(frozen=True)
class ActionResult:
    """What a mitigation did: `done` only if the engine carried it out."""

    name: str
    action: str
    done: bool
    detail: str = ""
    error: str | None = None
    before: ContainerState | None = None
    after: ContainerState | None = None


def restart(name: str, *, timeout: int = 10, base_url: str | None = None) -> ActionResult:
    """`docker restart`: SIGTERM, SIGKILL after `timeout` s, start again. Mitigation cells only."""
    before = state(name, base_url=base_url)
    if not before.exists:
        return ActionResult(name, "restart", False, "not restarted", before.error, before)
    dc, err = client(base_url, timeout=5)
    if dc is None:
        return ActionResult(name, "restart", False, "not restarted", err, before)
    try:
        _find(dc, name).restart(timeout=timeout)
    except NotFound:
        return ActionResult(name, "restart", False, "gone before restart", _missing(name), before)
    except ENGINE_ERRORS as exc:
        return ActionResult(name, "restart", False, "restart failed", _engine_error(exc), before)
    finally:
        dc.close()
    after = state(name, base_url=base_url)
    detail = (
        f"restarted: status {after.status}, started {after.started_at} (was {before.started_at})"
    )
    return ActionResult(name, "restart", True, detail, None, before, after)
