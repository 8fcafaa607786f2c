"""PromQL to tidy pandas frames, through prometheus-api-client.

Every query has an explicit time (instant) or start/end (range), a timeout, and a step that
keeps a series to about 500 points. Failures come back as a typed, empty result with a reason
("unreachable", "bad_query", "no_data"), never as an exception out of a notebook cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

import numpy as np
import pandas as pd
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

MAX_POINTS = 500
NO_DATA = "no data for this query in the window"
# Queries asked as one request (`joined`) have each one's series marked with its name in
# this label.
SIGNAL_LABEL = "runbook_signal"


class Failure(StrEnum):
    UNREACHABLE = "unreachable"
    BAD_QUERY = "bad_query"
    NO_DATA = "no_data"


@dataclass(frozen=True)
class QueryResult:
    """One query's rows: `timestamp` (UTC), one column per label, `value`."""

    query: str
    frame: pd.DataFrame
    failure: Failure | None = None
    reason: str = ""
    step_s: float | None = None
    labels: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.failure is None

    def last(self) -> float | None:
        """The newest value of the single (or first) series; None when there is none."""
        if self.frame.empty:
            return None
        return float(self.frame.sort_values("timestamp")["value"].iloc[-1])

    def by(self, label: str) -> dict[str, float]:
        """Newest value per value of `label` (for instant `sum by (label)` queries); for
        `"a,b"` the key is the two values joined by "|"."""
        names = [n.strip() for n in label.split(",")]
        if self.frame.empty or any(n not in self.frame for n in names):
            return {}
        newest = self.frame.sort_values("timestamp").groupby(names)["value"].last()
        key = (lambda k: str(k)) if len(names) == 1 else (lambda k: "|".join(map(str, k)))
        return {key(k): float(v) for k, v in newest.items()}


def choose_step(start: datetime, end: datetime, max_points: int = MAX_POINTS) -> float:
    """Seconds between points so that [start, end] has at most about `max_points`."""
    span = max(0.0, (end - start).total_seconds())
    return float(max(1, math.ceil(span / max_points)))


def escape(value: str) -> str:
    """A label value as a PromQL string literal body (quotes, backslashes, newlines)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(**labels: str | None) -> str:
    """`{k="v",...}` from the labels that are set, values escaped."""
    parts = [f'{k}="{escape(v)}"' for k, v in labels.items() if v is not None]
    return "{" + ",".join(parts) + "}"


class Prom:
    """A Prometheus HTTP API client that returns QueryResult, with a timeout on every call."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._api = PrometheusConnect(
            url=self.url,
            disable_ssl=True,
            timeout=timeout,
            retry=Retry(total=1, backoff_factor=0.1, status_forcelist=[502, 503, 504]),
            session=_session(self.url),
            auth=requests.utils.get_netrc_auth(self.url),
        )

    def instant(self, query: str, at: datetime) -> QueryResult:
        params = {"time": at.timestamp()}
        return self._call(
            query, lambda: self._api.custom_query(query, params=params, timeout=self.timeout)
        )

    def range(
        self, query: str, start: datetime, end: datetime, step: float | None = None
    ) -> QueryResult:
        step = step or choose_step(start, end)
        return self._call(query, lambda: self._range(query, start, end, step), step)

    def ranges(
        self, queries: dict[str, str], start: datetime, end: datetime, step: float | None = None
    ) -> dict[str, QueryResult]:
        """Each query's answer over one window (name -> query), from one request: the
        queries `joined`, the answer's series split back by their name before any frame is
        built, so each is the frame its query alone gives (a record's range requests: 18 ->
        6). When the joined query fails though Prometheus answered (a query the join cannot
        hold, e.g. one giving a scalar), each query is asked alone."""
        step = step or choose_step(start, end)
        if len(queries) < 2:
            return {name: self.range(query, start, end, step) for name, query in queries.items()}
        together = joined(queries)
        got = self._fetch(together, lambda: self._range(together, start, end, step), step)
        parts = _split(got, queries) if isinstance(got, list) else None
        if parts is not None:
            return {name: _result(query, parts[name], step) for name, query in queries.items()}
        if isinstance(got, QueryResult) and got.failure is Failure.UNREACHABLE:
            return {name: replace(got, query=query) for name, query in queries.items()}
        return {name: self.range(query, start, end, step) for name, query in queries.items()}

    def _range(self, query: str, start: datetime, end: datetime, step: float) -> list[dict]:
        return self._api.custom_query_range(query, start, end, f"{step:g}s", timeout=self.timeout)

    def _call(self, query: str, fetch: Callable[[], list[dict]], step: float | None = None
              ) -> QueryResult:  # fmt: skip
        got = self._fetch(query, fetch, step)
        return got if isinstance(got, QueryResult) else _result(query, got, step)

    def _fetch(self, query: str, fetch: Callable[[], list[dict]], step: float | None
               ) -> list[dict] | QueryResult:  # fmt: skip
        """Prometheus' series for `query`, or the failed result that says why there are
        none."""
        try:
            return fetch()
        except (requests.ConnectionError, requests.Timeout) as exc:
            return _failed(
                query,
                Failure.UNREACHABLE,
                f"Prometheus at {self.url} is unreachable ({_why(exc)})",
                step,
            )
        except PrometheusApiClientException as exc:
            kind = (
                Failure.BAD_QUERY if "400" in str(exc) or "422" in str(exc) else Failure.UNREACHABLE
            )
            return _failed(query, kind, f"Prometheus refused the query: {_short(exc)}", step)
        except (requests.RequestException, ValueError) as exc:
            return _failed(
                query, Failure.UNREACHABLE, f"bad answer from {self.url}: {_short(exc)}", step
            )


def joined(queries: dict[str, str]) -> str:
    """The queries (name -> PromQL) as one: each one's series marked with its name in
    `SIGNAL_LABEL` by `label_replace`, joined by `or` (so no two queries' series share a
    label set, and each query's series all come through)."""
    return " or ".join(
        f'label_replace({query}, "{SIGNAL_LABEL}", "{escape(name)}", "", "")'
        for name, query in queries.items()
    )


def _split(series: list[dict], queries: dict[str, str]) -> dict[str, list[dict]] | None:
    """The joined answer's series per query name, the marking label taken off; None when a
    series is not marked with one of the names (not an answer to `joined`)."""
    parts: dict[str, list[dict]] = {name: [] for name in queries}
    for one in series:
        name = one.get("metric", {}).pop(SIGNAL_LABEL, None)
        if name not in parts:
            return None
        parts[name].append(one)
    return parts


def ask_ranges(
    client: object, queries: dict[str, str], start: datetime, end: datetime,
    step: float | None = None,
) -> dict[str, QueryResult]:  # fmt: skip
    """Each query's answer over one window, asked together when `client` can (`ranges`:
    Prom, a record's Recording or Replay), else one query at a time (a test's wrapper)."""
    ranges = getattr(client, "ranges", None)
    if ranges is not None:
        return ranges(queries, start, end, step)
    return {name: client.range(query, start, end, step) for name, query in queries.items()}


def _result(query: str, data: list[dict], step: float | None) -> QueryResult:
    frame, labels = _frame(data)
    if frame.empty:
        return QueryResult(query, frame, Failure.NO_DATA, NO_DATA, step, labels)
    return QueryResult(query, frame, None, "", step, labels)


def _session(url: str) -> requests.Session:
    """A session taking the proxies the environment gives for `url` (HTTP_PROXY, NO_PROXY
    ...) once: left to requests, every query walks the environment again, several times
    (~5% of a run's kernel CPU in the profile). Certificates are not checked
    (`disable_ssl`), as before."""
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(url)
    session.trust_env = False
    session.verify = False
    return session


def _frame(data: list[dict]) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Prometheus' series as one frame, built a column at a time (~30% less CPU than a
    dict per point); a label a series lacks is NaN in its rows."""
    labels = tuple(sorted({k for series in data for k in series.get("metric", {})}))
    times: list = []
    values: list = []
    columns: dict[str, list] = {name: [] for name in labels}
    for series in data:
        metric = series.get("metric", {})
        points = series.get("values") or ([series["value"]] if "value" in series else [])
        times += [ts for ts, _ in points]
        values += [val for _, val in points]
        for name in labels:
            columns[name] += [metric.get(name, np.nan)] * len(points)
    if not times:
        return pd.DataFrame(columns=["timestamp", *labels, "value"]), labels
    numbers = np.asarray(values, dtype=float)
    frame = pd.DataFrame(
        {"timestamp": pd.to_datetime(np.asarray(times), unit="s", utc=True), **columns,
         "value": numbers}
    )  # fmt: skip
    if not np.isnan(numbers).any():  # most answers: nothing to drop, no copy to make
        return frame, labels
    return frame[~frame["value"].isna()].reset_index(drop=True), labels


def _failed(query: str, kind: Failure, reason: str, step: float | None) -> QueryResult:
    return QueryResult(query, pd.DataFrame(columns=["timestamp", "value"]), kind, reason, step)


def _why(exc: BaseException) -> str:
    """The useful part of a requests connection error."""
    text = str(exc)
    for needle, why in (
        ("Connection refused", "connection refused"),
        ("timed out", "no answer within the timeout"),
        ("Name or service not known", "unknown host"),
        ("No route to host", "no route to host"),
    ):
        if needle in text:
            return why
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
