"""Every number the diagnosis judges by that the data cannot give it, once, with the reason
for its value. Everything else (a LibreOffice process's size, a cache miss's cost, the level
before the incident) is estimated from the run's own data; see `estimate`.

`TABLE` holds them by name (value, unit, why); the names below are what the rules read.
`python -m runbook_lib.diagnosis.constants` prints the table as Markdown.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    why: str


TABLE: dict[str, Constant] = {}


def _c(name: str, value: float, unit: str, why: str) -> float:
    if name in TABLE:
        raise ValueError(f"diagnosis constant {name!r} is defined twice")
    TABLE[name] = Constant(value, unit, why)
    return value


# -- from evidence to a verdict ---------------------------------------------------------
LIKELY = _c("likely_score", 0.7, "share of judged weight",
            "the cause's sign and most of its corroboration hold; one weighty fact against "
            "it (weight 3 of 10) still leaves it likely")  # fmt: skip
POSSIBLE = _c("possible_score", 0.35, "share of judged weight",
              "about a third of the evidence for it: worth a look, not worth acting on alone")  # fmt: skip
MOSTLY = _c("mostly_share", 0.5, "share of the symptom",
            "explaining at least half of the symptom is explaining most of it; a cause that "
            "does, with its required evidence holding and no rival, is likely")  # fmt: skip
CONTRIBUTOR = _c("contributor_share", 0.2, "share of the symptom",
                 "a second likely cause is named as contributing when it explains this much: "
                 "below it, a part is within what the split of the symptom cannot tell apart")  # fmt: skip
NOTHING_EXPLAINS = _c("nothing_explains_share", 0.5, "share of the symptom",
                      "when causes explain less than half of the symptom, no runbook cause "
                      "explains the incident: the record says so before anything else")  # fmt: skip

MIN_POINTS = _c("min_points", 3, "scrapes",
                "a level or a line read from fewer points than three is one scrape's noise")  # fmt: skip

# -- memory ---------------------------------------------------------------------------------
GAIN_FLOOR = _c("memory_gain_floor", 64 * 2**20, "bytes over the hour",
                "less growth than this over the hour is within a healthy service's churn "
                "(garbage collection, a workbook loaded): no memory symptom to split")  # fmt: skip
LEAK_MB_H = _c("leak_mb_per_h", 50, "MB/h",
               "slower growth than this takes over three days to fill the 4 GiB limit from "
               "35 %: not what a memory alert is about")  # fmt: skip
LEAK_R2 = _c("leak_fit_r2", 0.8, "R²",
             "growth nothing else explains is a leak only when a straight line fits it this "
             "well since it began; steps and swings fit worse")  # fmt: skip
MIN_CLIMB_POINTS = _c("min_climb_points", 40, "scrapes",
                      "ten minutes of 15 s scrapes: a climb shorter than that is a step, and "
                      "a line through it says nothing about a steady growth")  # fmt: skip
STEADY_R2 = _c("steady_fit_r2", 0.9, "R²",
               "the rule's own sign of a steady climb over the hour, stricter than the "
               "attribution's, as the rule reads the whole series, spikes included")  # fmt: skip
JUMPY = _c("jumpy_share", 0.05, "share of scrapes",
           "memory that moves by over a tenth of the limit between scrapes this often comes "
           "and goes with requests; a leak or a cache never jumps")  # fmt: skip
DEJUMP_POINTS = _c("dejump_points", 20, "scrapes",
                   "five minutes of 15 s points: the rolling minimum under the spikes")  # fmt: skip
CACHE_HEAVY = _c("cache_memory_share", 0.4, "share of resident memory",
                 "a cache holding this much of the process is the first thing to shrink; "
                 "below it, a cache cannot be what filled the memory")  # fmt: skip
MANY_CACHED = _c("many_cached_workbooks", 2000, "workbooks",
                 "the runbook's suggested CACHE_MAX_SIZE: more cached workbooks than that")  # fmt: skip
SOFFICE_HEAVY = _c("soffice_heavy_bytes", 512 * 2**20, "bytes",
                   "all soffice processes together holding more than half a GiB (an eighth of "
                   "the limit) is memory worth reclaiming")  # fmt: skip
SOFFICE_DEFAULT = _c("soffice_default_bytes", 250e6, "bytes",
                     "a headless soffice worker with a workbook open holds 200-300 MB; used only "
                     "when neither the series nor the host can say")  # fmt: skip
MIN_PROCESS_STEPS = _c("min_process_steps", 3, "processes",
                       "the process count must move by this many over the hour before memory "
                       "can be regressed on it; fewer steps cannot tell a size from noise")  # fmt: skip
PROCESS_FIT_R2 = _c("process_fit_r2", 0.5, "R²",
                    "the moves of memory must follow the moves of the process count this well "
                    "for their ratio to be a process's size")  # fmt: skip
DRIFT_POINTS = _c("drift_points", 20, "scrapes",
                  "memory's drift around a process's start is read from five minutes of 15 s "
                  "scrapes either side: near enough to be the same drift, long enough for a "
                  "median")  # fmt: skip
PLAUSIBLE_PROCESS = _c("plausible_process_bytes", 2e9, "bytes",
                       "no worker process holds half the service's limit: an estimate beyond "
                       "this is something else moving with the count")  # fmt: skip

# -- latency --------------------------------------------------------------------------------
PRESSURE_PERCENT = _c("memory_pressure_percent", 85, "% of the memory limit",
                      "above this the runtime collects garbage constantly and the host may swap")  # fmt: skip
QUERY_SLOW_S = _c("query_slow_s", 2.0, "s (query p95)",
                  "a database query this slow at p95 is the runbook's 'slow query'")  # fmt: skip
STAGE_SLOW_S = _c("stage_slow_s", 5.0, "s (recalc or screenshot p95)",
                  "the runbook's recalc alert (GgenMcpHighRecalcDuration) fires at 5 s")  # fmt: skip
SLOW_QUERY_RATE = _c("slow_query_rate", 0.5, "queries/s",
                     "one slow query every two seconds is a pattern, not a stray")  # fmt: skip
EVICTING = _c("evicting_share", 0.5, "evictions per miss",
              "when half the misses evict a workbook, the cache is churning: what it loads "
              "pushes out what it will need")  # fmt: skip
MIN_TRAFFIC = _c("min_traffic_share", 0.05, "share of requests",
                 "a tool with less traffic than this does not set the slowdown every tool "
                 "shares: a handful of requests makes a noisy p95")  # fmt: skip
RESOLUTION = _c("histogram_resolution", 2.0, "times",
                "a p95 read from a histogram is known only to within its bucket, and the "
                "duration buckets are up to 2.5x apart (1 s to 2.5 s): a tool is slowed by its "
                "stage only when it is at least twice as slow as the shared slowdown makes it")  # fmt: skip
LATENCY_FLOOR_S = _c("latency_floor_s", 0.05, "s of added p95",
                     "less added latency than this on the average request is no symptom")  # fmt: skip
BASELINE_QUANTILE = _c("baseline_quantile", 0.1, "quantile",
                       "a tool's level before the incident is the 10th percentile of its p95 "
                       "over the baseline window: the quiet stretch, not one lucky scrape")  # fmt: skip
BASELINE_MINUTES = _c("baseline_minutes", 120, "minutes",
                      "the window the level before the incident is read from: a fault that "
                      "began up to 90 minutes ago still leaves a healthy half hour in it")  # fmt: skip
SWAP_BUSY = _c("swap_percent", 20, "% of swap used",
               "a host using a fifth of its swap is paging the service's memory")  # fmt: skip

# -- errors ---------------------------------------------------------------------------------
ERROR_TYPES_SHARE = _c("error_types_share", 0.5, "share of errors",
                       "a cause's error types are most errors: the rule's gate")  # fmt: skip
LOG_SHARE = _c("log_share", 0.3, "share of error lines",
               "log lines of a cause's pattern are a third of the error lines: more than noise")  # fmt: skip
TOOLS_SHARE = _c("tools_share", 0.8, "share of errors",
                 "errors concentrated this much on one stage's tools point at that stage")  # fmt: skip
MIN_EVENTS = _c("min_events", 1, "errors or misses",
                "fewer than one error (or cache miss) in the window is nothing to split")  # fmt: skip

# -- cache ----------------------------------------------------------------------------------
PINNED = _c("cache_size_pinned_cv", 0.02, "coefficient of variation",
            "a cache size that varies less than 2 % over 5 minutes sits at its cap")  # fmt: skip
VARYING = _c("cache_size_varying_cv", 0.05, "coefficient of variation",
             "a cache size that varies more than 5 % evicts below its cap: entries expire")  # fmt: skip
MIN_EVICT_LINES = _c("min_evict_lines", 3, "log lines",
                     "three eviction lines of one reason are a pattern; one or two are chance")  # fmt: skip
POOR_KEYS = _c("keys_per_workbook", 2, "keys per workbook",
               "a workbook looked up under two keys or more misses for the key, not the workbook")  # fmt: skip
FEW_KEYS = _c("few_keys_per_workbook", 1.5, "keys per workbook",
              "under 1.5 keys per workbook, the keys are not what makes the misses")  # fmt: skip
NEW_WORKBOOKS = _c("new_workbook_share", 0.8, "share of misses",
                   "four misses in five for a workbook not seen before: requests vary too much "
                   "for any cache")  # fmt: skip

# -- processes, descriptors, disk, logs -----------------------------------------------------
LEAKED = _c("leaked_processes", 3, "processes",
            "three processes of one kind (orphaned, zombie, hung) are a leak, not a straggler")  # fmt: skip
HUNG_AGE_S = _c("hung_age_s", 300, "s",
                "a LibreOffice job takes seconds; alive five minutes without working is hung")  # fmt: skip
HUNG_CPU_SHARE = _c("hung_cpu_share", 0.01, "CPU seconds per second alive",
                    "a process that used under 1 % of a core over its life is not working")  # fmt: skip
ENOUGH_FDS = _c("enough_fds", 4096, "descriptors",
                "the runbook's suggested descriptor limit")  # fmt: skip
FDS_FOLLOW_LOAD_R2 = _c("fds_follow_load_r2", 0.6, "R²",
                        "open descriptors that fit a line this badly follow the load")  # fmt: skip
OLD_TEMP_FILES = _c("old_temp_files", 50, "files",
                    "fifty ggen-mcp temp files older than a day are a clean-up that never runs")  # fmt: skip
MIN_LOG_LINES = _c("min_log_lines", 3, "log lines",
                   "three lines of a pattern in the window are a pattern")  # fmt: skip
MIN_KEYED_MISSES = _c("min_keyed_misses", 10, "log lines",
                      "ten misses naming workbook and key before keys per workbook means anything")  # fmt: skip


def markdown() -> str:
    """The table as Markdown, for the docs."""
    rows = ["| name | value | unit | why |", "|---|---|---|---|"]
    rows += [f"| `{n}` | {c.value:g} | {c.unit} | {c.why} |" for n, c in TABLE.items()]
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(markdown() + "\n")
