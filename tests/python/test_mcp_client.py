"""The official Python MCP SDK as an external client of `isms`: every tool, over stdio and
Streamable HTTP, in the 2025-11-25 (initialize) and 2026-07-28 (discover) protocol eras."""

import os
import re
import subprocess
import tempfile
import threading

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BIN = os.environ["ISMS_BIN"]
TOOLS = {"get_record", "verify_audit_trail", "log_nonconformity", "list_nonconformities", "query_controls"}
MODES = {"legacy": "2025-11-25", "auto": "2026-07-28"}


def database(tmp: str) -> str:
    return f"sqlite://{tmp}/isms.db?mode=rwc"


class HttpServer:
    """`isms serve` on a free port; the bootstrap token is read from its stderr."""

    def __init__(self, db: str):
        env = dict(os.environ, ISMS_DATABASE_URL=db, ISMS_LOG="warn")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0"], env=env, stderr=subprocess.PIPE, text=True
        )
        self.token = None
        self.url = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                line = line.strip()
                if re.fullmatch(r"isms_[0-9a-f]{64}", line):
                    self.token = line
                if line.startswith("isms listening on "):
                    self.url = line.split()[3] + "/mcp"
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(30), "isms serve did not start"

    def close(self):
        self.proc.kill()
        self.proc.wait()


def connect(transport: str, mode: str, db: str, server: HttpServer | None) -> Client:
    if transport == "stdio":
        params = StdioServerParameters(
            command=BIN, args=["stdio", "--actor", "admin"], env={"ISMS_DATABASE_URL": db, "ISMS_LOG": "warn"}
        )
        return Client(params, mode=mode)
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {server.token}"})
    return Client(streamable_http_client(server.url, http_client=http), mode=mode)


async def exercise(client: Client, expected_version: str) -> None:
    assert client.protocol_version == expected_version
    tools = await client.list_tools()
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == TOOLS
    for tool in tools.tools:
        assert tool.output_schema["type"] == "object"
        assert tool.input_schema.get("additionalProperties") is False

    finding = {
        "title": "Secret found in a log file",
        "description": "A database password appeared in worker.log",
        "severity": "major",
        "source": "self_report",
        "controls": ["A.8.12", "A.5.17"],
        "idempotency_key": f"py-{expected_version}",
    }
    logged = await client.call_tool("log_nonconformity", finding)
    assert not logged.is_error, logged
    ref = logged.structured_content["nonconformity"]["ref"]
    assert re.fullmatch(r"NC-\d+", ref)
    assert logged.structured_content["nonconformity"]["due_date"]

    retry = await client.call_tool("log_nonconformity", finding)
    assert retry.structured_content["nonconformity"]["ref"] == ref
    assert retry.structured_content["replayed"] is True

    listed = await client.call_tool("list_nonconformities", {"control": "A.5.17"})
    assert ref in [i["ref"] for i in listed.structured_content["items"]]

    record = await client.call_tool("get_record", {"ref": ref})
    assert record.structured_content["record"]["title"] == "Secret found in a log file"
    assert record.structured_content["history"][0]["operation"] == "log_nonconformity"

    controls = await client.call_tool("query_controls", {"ref": "A.8.28"})
    assert controls.structured_content["controls"][0]["title"] == "Secure coding"

    verified = await client.call_tool("verify_audit_trail", {})
    assert verified.structured_content["intact"] is True

    bad = await client.call_tool("log_nonconformity", {"title": "x", "description": "y", "severity": "huge", "source": "incident"})
    assert bad.is_error
    assert "severity" in bad.content[0].text


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_every_tool(transport: str, mode: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = database(tmp)
        # On a new database both `isms serve` and `isms stdio` create the `admin` actor first.
        server = HttpServer(db) if transport == "http" else None

        async def main() -> None:
            async with connect(transport, mode, db, server) as client:
                await exercise(client, MODES[mode])

        try:
            anyio.run(main)
        finally:
            if server:
                server.close()
