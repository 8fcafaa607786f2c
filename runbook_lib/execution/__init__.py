"""Running a runbook notebook: the pinned copy production runs, a kernel of its own per run
(forked from a warm zygote or started fresh, dying with its parent), and the engine that
executes it with papermill and files the record."""
