"""The runbook's resolution commands per cause, filled with the values the run found.

They are shown, not run. Values are shell-quoted, so a label cannot turn a command into
something else when it is pasted.
"""

from __future__ import annotations

import shlex
from typing import Any

COMMANDS: dict[str, str] = {
    "process_crashed": "docker restart {container}\n# or: systemctl restart ggen-mcp\n"
    "curl http://localhost:{port}/health",
    "port_in_use": "lsof -i :{port}   # or: ss -ltnp | grep {port}\n"
    "kill {holder_pid}   # the process holding the port: {holder_name}\n"
    "docker restart {container}",
    "oom_killed": "dmesg | grep -i 'out of memory'\ndmesg | grep -i 'killed process'\n"
    "# raise the limit in docker-compose.yml: mem_limit: 4g, mem_reservation: 2g\n"
    "docker-compose up -d",
    "dependency_unavailable": "docker ps -a\nsystemctl status postgresql redis\n"
    "systemctl restart postgresql\ndocker restart {container}",
    "invalid_input": "docker logs {container} 2>&1 | grep -A5 'validation error'\n"
    "# identify the clients sending invalid requests; improve validation messages",
    "database_connection": 'psql -h localhost -U ggen_mcp -c "SELECT 1"\n'
    "curl -s http://localhost:{port}/metrics | grep pool",
    "third_party_api": "curl -I https://external-api.example.com/health\n"
    "# add a circuit breaker and retries with exponential backoff",
    "libreoffice_failure": "ps aux | grep [s]office\nkill -9 {pids}\nulimit -n",
    "cpu_saturation": "top -b -n 1 | head -20\nps aux --sort=-%cpu | head -10\n"
    "# scale out: add instances behind the load balancer",
    "memory_pressure": "free -h\nvmstat 1 5\ndocker stats --no-stream {container}\n"
    "docker restart {container}",
    "slow_database_queries": 'psql -c "SELECT query, mean_exec_time FROM pg_stat_statements '
    'ORDER BY mean_exec_time DESC LIMIT 10"\n'
    "docker logs {container} 2>&1 | grep 'slow query'",
    "cache_thrashing": "curl -s http://localhost:{port}/metrics | grep cache\n"
    "# raise CACHE_MAX_SIZE, pre-warm common workbooks, review TTLs",
    "libreoffice_bottleneck": "ps aux | grep [s]office | wc -l\n"
    "# raise MAX_LIBREOFFICE_PROCESSES; pool processes; add timeouts",
    "memory_leak": "kill -USR2 {service_pid}   # heap snapshot, if heapdump is enabled\n"
    "docker restart {container}   # temporary mitigation",
    "cache_too_large": "curl -s http://localhost:{port}/metrics | grep cache_size\n"
    "curl -X POST http://localhost:{port}/admin/cache/clear\n"
    "# lower CACHE_MAX_SIZE; add LRU eviction and a TTL",
    "large_payloads": "# set MAX_REQUEST_SIZE=10mb; stream large workbooks instead of loading them",
    "too_many_libreoffice_processes": "ps aux | grep [s]office\nkill -9 {pids}\n"
    "# MAX_LIBREOFFICE_PROCESSES=3; kill idle processes",
    "cache_too_small": "# raise CACHE_MAX_SIZE (e.g. 2000), then\ndocker restart {container}",
    "poor_cache_keys": "# normalise cache keys: drop timestamps and volatile query parameters",
    "high_request_variance": "# cache common sub-results; warm the cache for frequent workbooks",
    "ttl_too_short": "# raise CACHE_TTL (e.g. 3600); use longer TTLs for hot workbooks",
    "orphaned_processes": "ps -o pid,ppid,etime,cmd -p {pids}\nkill -9 {pids}\n"
    "# reap children on every error path; add process timeouts",
    "zombie_processes": "ps aux | grep defunct\n"
    "# zombies go when their parent reaps them or exits:\n"
    "docker restart {container}",
    "hung_processes": "ps -o pid,etime,time,cmd -p {pids}\nkill -9 {pids}\n"
    "# add a timeout to each LibreOffice operation",
    "fd_leak": "lsof -p {service_pid} | wc -l\n"
    "# close descriptors in finally blocks; restart for now:\n"
    "docker restart {container}",
    "fd_limit_too_low": "ulimit -n\n# raise it: ulimit -n 8192 (or LimitNOFILE=8192 in the unit)",
    "log_files_growing": "logrotate /etc/logrotate.d/ggen-mcp\n"
    "find /var/log/ggen-mcp -name '*.log' -mtime +7 -delete",
    "prometheus_data_growing": "du -sh /var/lib/prometheus\n"
    "# lower --storage.tsdb.retention.time (e.g. 15d), restart",
    "temp_files_not_cleaned": "find {temp_dir} -name 'ggen-mcp-*' -mtime +1\n"
    "find {temp_dir} -name 'ggen-mcp-*' -mtime +1 -delete",
}


def commands(runbook: str, cause: str, values: dict[str, Any]) -> str:
    """The commands for `cause`, with the run's values put in (shell-quoted)."""
    holder = values.get("holder") or {}
    pids = values.get("pids") or []
    fill = {
        "container": shlex.quote(str(values.get("container") or "ggen-mcp-server")),
        "port": int(values.get("port") or 9464),
        "pids": " ".join(str(int(p)) for p in pids[:20]) or "<PID>",
        "temp_dir": shlex.quote(str(values.get("temp_dir") or "/tmp")),
        "holder_pid": int(holder["pid"]) if holder.get("pid") else "<PID>",
        "holder_name": shlex.quote(str(holder.get("name") or "unknown")),
        "service_pid": int(values["service_pid"]) if values.get("service_pid") else "<PID>",
    }
    template = COMMANDS.get(cause, "# no runbook commands for this cause")
    return template.format(**fill)
