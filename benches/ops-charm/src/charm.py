#!/usr/bin/env python3
"""The benchmark's ops charm: the Parse Server charm's steady update-status, written with ops.

What a Python charmer would write for the same job when nothing changed: read the config it
needs, GET parse-server's health, connect to the database with the credentials in
`database-uri` and run the same check as the Rust charm, read the service's memory (the
resident memory of its cgroup's processes, as the Rust charm counts it) and set one active status. `make bench` runs it on the same
booted machine as the Rust charm, against the same parse-server and PostgreSQL.
"""

import json
import logging
import math
import pathlib
import ssl
import urllib.parse
import urllib.request

import ops
import pg8000.native

logger = logging.getLogger(__name__)

SERVICE = "parse-server.service"
CGROUP_PROCS = pathlib.Path("/sys/fs/cgroup/system.slice") / SERVICE / "cgroup.procs"
# The Rust charm's check: the database answers, accepts the credentials, and says whether
# PostGIS is there.
POSTGIS_QUERY = "SELECT extname FROM pg_extension WHERE extname = 'postgis'"
TLS_MODES = {"require", "verify-ca", "verify-full"}


class ParseServerOpsCharm(ops.CharmBase):
    """update-status only: the service is deployed and configured by someone else."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_update_status(self, _: ops.UpdateStatusEvent):
        port = int(self.config["port"])
        mount_path = str(self.config["mount-path"])
        uri = str(self.config.get("database-uri") or "")
        if not uri:
            self.unit.status = ops.BlockedStatus("no database: set database-uri")
            return
        try:
            self._health(port, mount_path)
        except (OSError, ValueError) as e:
            self.unit.status = ops.WaitingStatus(f"parse-server is not healthy: {e}")
            return
        try:
            self._database(uri)
        except (pg8000.native.Error, OSError, ValueError) as e:
            logger.warning("database check failed: %s", type(e).__name__)
            self.unit.status = ops.BlockedStatus("the database does not answer or refuses")
            return
        processes, mib = self._memory()
        self.unit.status = ops.ActiveStatus(
            f"serving on port {port} at {mount_path}, {processes} processes, {mib} MiB"
        )

    @staticmethod
    def _health(port: int, mount_path: str):
        url = f"http://127.0.0.1:{port}{mount_path.rstrip('/')}/health"
        # The loopback never goes through a proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with opener.open(request, timeout=5) as answer:
            body = json.loads(answer.read(64 * 1024))
        if answer.status != 200 or body.get("status") != "ok":
            raise ValueError(f"{url} answers {answer.status} {body}")

    @staticmethod
    def _database(uri: str) -> bool:
        """Whether PostGIS is installed (the Rust charm compares it with its hint; this charm
        has no hint to compare with, so only the connection and the query count)."""
        parts = urllib.parse.urlsplit(uri)
        query = urllib.parse.parse_qs(parts.query)
        tls = query.get("ssl", [""])[0] == "true" or query.get("sslmode", [""])[0] in TLS_MODES
        context = None
        if tls:
            context = ssl.create_default_context(cafile=query.get("sslrootcert", [None])[0])
        connection = pg8000.native.Connection(
            user=urllib.parse.unquote(parts.username or "postgres"),
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            database=urllib.parse.unquote(parts.path.lstrip("/")) or None,
            ssl_context=context,
            timeout=10,
            application_name="parse-server-ops-charm",
        )
        try:
            return bool(connection.run(POSTGIS_QUERY))
        finally:
            connection.close()

    @staticmethod
    def _memory() -> tuple[int, int]:
        """The service's processes and their resident memory in MiB rounded up, as the Rust
        charm counts it: each process's RssAnon + RssShmem, plus the largest RssFile."""
        try:
            pids = CGROUP_PROCS.read_text().split()
        except OSError:
            return 0, 0
        own_kib = 0
        files_kib = 0
        counted = 0
        for pid in pids:
            try:
                status = pathlib.Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue  # gone since cgroup.procs was read
            fields = {}
            for line in status.splitlines():
                name, _, value = line.partition(":")
                if name in ("RssAnon", "RssFile", "RssShmem"):
                    fields[name] = int(value.split()[0])
            own_kib += fields.get("RssAnon", 0) + fields.get("RssShmem", 0)
            files_kib = max(files_kib, fields.get("RssFile", 0))
            counted += 1
        return counted, math.ceil((own_kib + files_kib) / 1024)


if __name__ == "__main__":
    ops.main(ParseServerOpsCharm)
