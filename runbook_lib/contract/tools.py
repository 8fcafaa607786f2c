"""Which stage each GGEN MCP tool goes through. A slow stage explains the latency of the
tools that use it, and its failures their errors (see the latency and error attributions)."""

DB_TOOLS = frozenset({"read_table", "list_workbooks"})  # the database
LIBREOFFICE_TOOLS = frozenset({"recalc", "screenshot"})  # a LibreOffice process
