"""Host checks for the runbook: processes, descriptors, memory, load, disks, temp files,
listeners and the kernel's OOM log, read with psutil.

No public function raises for what it could not read (access denied, a process that ended,
a missing /proc entry, an unreadable kernel log): results carry `error` naming the source and
the reason, so a notebook cell shows the gap instead of dying half-way through an incident.
Every result has `to_frame()` so a notebook can display it."""

from runbook_lib.evidence.host.common import (
    BUSY_CPU_SHARE,
    IDLE_CPU_SHARE,
    IDLE_MIN_AGE_S,
    KERN_LOG,
    KERN_LOG_TAIL_BYTES,
    OOM_RE,
    OOM_SOURCES,
    ItemList,
    frame,
)
from runbook_lib.evidence.host.files import (
    LargestResult,
    SizeEntry,
    TempFile,
    TempFiles,
    largest,
    temp_files,
)
from runbook_lib.evidence.host.oom import (
    OomEvidence,
    OomLine,
    oom_events,
)
from runbook_lib.evidence.host.processes import (
    DescriptorList,
    FdUsage,
    ProcessList,
    ProcInfo,
    descriptors,
    hung,
    named,
    orphans,
    processes,
    zombies,
)
from runbook_lib.evidence.host.resources import (
    DiskList,
    DiskUsage,
    Listener,
    ListenerList,
    LoadInfo,
    MemoryInfo,
    disks,
    listeners,
    load,
    memory,
)

__all__ = [
    "BUSY_CPU_SHARE",
    "DescriptorList",
    "DiskList",
    "DiskUsage",
    "FdUsage",
    "IDLE_CPU_SHARE",
    "IDLE_MIN_AGE_S",
    "ItemList",
    "KERN_LOG",
    "KERN_LOG_TAIL_BYTES",
    "LargestResult",
    "Listener",
    "ListenerList",
    "LoadInfo",
    "MemoryInfo",
    "OOM_RE",
    "OOM_SOURCES",
    "OomEvidence",
    "OomLine",
    "ProcInfo",
    "ProcessList",
    "SizeEntry",
    "TempFile",
    "TempFiles",
    "descriptors",
    "disks",
    "frame",
    "hung",
    "largest",
    "listeners",
    "load",
    "memory",
    "named",
    "oom_events",
    "orphans",
    "processes",
    "temp_files",
    "zombies",
]
