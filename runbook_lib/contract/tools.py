"""Which stage each GGEN MCP tool goes through. A slow stage explains the latency of the
tools that use it, and its failures their errors (see the latency and error attributions)."""

DB_TOOLS = frozenset({"read_table", "list_workbooks"})  # the database
LIBREOFFICE_TOOLS = frozenset({"recalc", "screenshot"})  # a LibreOffice process
# The tools that load a workbook, through the workbook cache: only these can be slowed by a
# cache miss (list_workbooks reads the index, render_template a template, fork_workbook
# copies a file).
CACHE_TOOLS = frozenset({"read_table", "write_cells", "recalc", "screenshot"})
