"""The official Python MCP SDK as an external client of `isms`: every tool, over stdio and
Streamable HTTP, in the 2025-11-25 (initialize) and 2026-07-28 (discover) protocol eras."""

import hashlib
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
TOOLS = {
    "get_record",
    "verify_audit_trail",
    "log_nonconformity",
    "list_nonconformities",
    "record_nonconformity_analysis",
    "plan_corrective_action",
    "update_corrective_action",
    "review_effectiveness",
    "close_nonconformity",
    "query_controls",
    "update_soa_entry",
    "approve_soa",
    "export_soa",
    "register_risk",
    "update_risk",
    "set_competence_requirements",
    "record_competence",
    "list_competence_gaps",
    "publish_policy",
    "acknowledge_policy",
    "check_awareness",
    "raise_change_request",
    "decide_change_request",
    "update_change_request",
    "list_change_requests",
    "define_objective",
    "record_measurement",
    "record_audit",
    "record_context",
    "get_management_review_inputs",
    "record_management_review",
    "complete_review_action",
    "check_certification_readiness",
}
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


def add_actor(db: str, name: str, role: str) -> str:
    out = subprocess.run(
        [BIN, "actor", "add", name, "--role", role],
        env=dict(os.environ, ISMS_DATABASE_URL=db, ISMS_LOG="warn"),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def connect(transport: str, mode: str, db: str, server: HttpServer | None, actor: str, token: str | None) -> Client:
    if transport == "stdio":
        params = StdioServerParameters(
            command=BIN, args=["stdio", "--actor", actor], env={"ISMS_DATABASE_URL": db, "ISMS_LOG": "warn"}
        )
        return Client(params, mode=mode)
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token or server.token}"})
    return Client(streamable_http_client(server.url, http_client=http), mode=mode)


async def exercise(client: Client, expected_version: str) -> str:
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
    ref = logged.structured_content["ref"]
    assert re.fullmatch(r"NC-\d+", ref)
    assert logged.structured_content["due_date"]

    retry = await client.call_tool("log_nonconformity", finding)
    assert retry.structured_content["ref"] == ref
    assert retry.structured_content["replayed"] is True

    listed = await client.call_tool("list_nonconformities", {"control": "A.5.17"})
    assert ref in [i["ref"] for i in listed.structured_content["items"]]

    record = await client.call_tool("get_record", {"ref": ref})
    assert record.structured_content["record"]["title"] == "Secret found in a log file"
    assert record.structured_content["history"][0]["operation"] == "log_nonconformity"

    controls = await client.call_tool("query_controls", {"ref": "A.8.28"})
    assert controls.structured_content["controls"][0]["title"] == "Secure coding"
    assert controls.structured_content["controls"][0]["soa"]["applicable"] is None

    risk = await client.call_tool(
        "register_risk",
        {
            "title": "Secrets leak through logs",
            "asset": "Workers",
            "threat": "Credentials read from logs",
            "vulnerability": "Config objects logged",
            "properties": ["confidentiality"],
            "likelihood": 3,
            "impact": 4,
            "owner": "agent-py",
            "treatment": "mitigate",
            "controls": ["A.8.12"],
        },
    )
    assert not risk.is_error, risk.content[0].text
    risk_ref = risk.structured_content["risk"]["ref"]
    entry = await client.call_tool(
        "update_soa_entry",
        {"control": "A.8.12", "version": 0, "applicable": True, "justification": "Treats " + risk_ref},
    )
    assert entry.structured_content["entry"]["risks"] == [risk_ref]
    excluded = await client.call_tool(
        "update_soa_entry", {"control": "A.7.3", "version": 0, "applicable": False, "justification": "Fully remote"}
    )
    assert excluded.is_error and "risk assessment" in excluded.content[0].text
    exported = await client.call_tool("export_soa", {"format": "csv"})
    assert exported.structured_content["rows"] == 93 and exported.structured_content["draft"] is True
    incomplete = await client.call_tool("approve_soa", {"draft_hash": exported.structured_content["draft_hash"]})
    assert incomplete.is_error and "undecided" in incomplete.content[0].text

    published = await client.call_tool(
        "publish_policy", {"policy_id": "constitution", "version": "1", "title": "Constitution", "content": "Protect client data."}
    )
    assert not published.is_error, published.content[0].text
    before = await client.call_tool("check_awareness", {})
    assert before.structured_content["current"] is False
    text = (await client.read_resource("isms://policies/constitution")).contents[0].text
    digest = hashlib.sha256(text.encode()).hexdigest()
    acked = await client.call_tool("acknowledge_policy", {"policy_id": "constitution", "version": "1", "sha256": digest, "context": "pytest"})
    assert acked.structured_content["pending"] == []
    assert (await client.call_tool("check_awareness", {})).structured_content["current"] is True

    verified = await client.call_tool("verify_audit_trail", {})
    assert verified.structured_content["intact"] is True
    return ref

    bad = await client.call_tool("log_nonconformity", {"title": "x", "description": "y", "severity": "huge", "source": "incident"})
    assert bad.is_error
    assert "severity" in bad.content[0].text


async def corrective_action_cycle(manager: Client, owner: Client, ref: str) -> None:
    """10.2 from analysis to closure: the manager analyses, plans and closes; the owner does the action."""
    record = (await manager.call_tool("get_record", {"ref": ref})).structured_content["record"]
    premature = await manager.call_tool("close_nonconformity", {"ref": ref, "version": record["version"], "isms_changes": "none"})
    assert premature.is_error and "next step is record_nonconformity_analysis" in premature.content[0].text

    analysed = await manager.call_tool(
        "record_nonconformity_analysis",
        {
            "ref": ref,
            "version": record["version"],
            "correction": "Password rotated, log lines purged",
            "method": "5 whys",
            "root_cause": "The worker logs whole config objects at debug level",
            "similar": [],
            "action_needed": True,
        },
    )
    assert not analysed.is_error, analysed.content[0].text
    assert analysed.structured_content["next_step"] == "plan_corrective_action"

    planned = await manager.call_tool(
        "plan_corrective_action",
        {"ref": ref, "version": analysed.structured_content["version"], "description": "Redact secrets in the logger", "owner": "agent-py"},
    )
    assert not planned.is_error, planned.content[0].text
    action = planned.structured_content["action"]

    done = await owner.call_tool(
        "update_corrective_action",
        {"ref": action["ref"], "version": action["version"], "status": "done", "evidence": ["commit abc123"]},
    )
    assert not done.is_error, done.content[0].text
    assert done.structured_content["nonconformity"]["next_step"] == "review_effectiveness"

    reviewed = await manager.call_tool(
        "review_effectiveness",
        {"ref": ref, "version": done.structured_content["nonconformity"]["version"], "result": "effective", "notes": "No secrets in a week of logs"},
    )
    assert not reviewed.is_error, reviewed.content[0].text
    closed = await manager.call_tool(
        "close_nonconformity", {"ref": ref, "version": reviewed.structured_content["version"], "isms_changes": "Logging standard updated"}
    )
    assert closed.structured_content["status"] == "closed"

    raised = await owner.call_tool(
        "raise_change_request",
        {
            "title": "Redacting logger",
            "description": "Ship the redacting logger",
            "purpose": "Close " + ref,
            "consequences": "Secrets masked in logs",
            "type": "normal",
            "controls": ["A.8.12"],
            "implementation_plan": "Deploy the new logger",
            "rollback_plan": "Redeploy the old image",
            "nonconformity": ref,
        },
    )
    assert not raised.is_error, raised.content[0].text
    change = raised.structured_content["change_request"]
    own = await owner.call_tool("decide_change_request", {"ref": change["ref"], "version": 1, "decision": "approve"})
    assert own.is_error
    decided = await manager.call_tool("decide_change_request", {"ref": change["ref"], "version": 1, "decision": "approve"})
    assert decided.structured_content["change_request"]["status"] == "approved"
    listed = await manager.call_tool("list_change_requests", {"control": "A.8.12"})
    assert change["ref"] in [c["ref"] for c in listed.structured_content["items"]]


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_every_tool(transport: str, mode: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = database(tmp)
        # Over HTTP the manager is the `admin` a new database starts with; over stdio, a registered one.
        server = HttpServer(db) if transport == "http" else None
        manager_name = "admin" if server else "manager-py"
        if server is None:
            add_actor(db, manager_name, "isms_manager")
        agent_token = add_actor(db, "agent-py", "agent")

        async def main() -> None:
            async with connect(transport, mode, db, server, manager_name, None) as manager:
                ref = await exercise(manager, MODES[mode])
                async with connect(transport, mode, db, server, "agent-py", agent_token) as owner:
                    await corrective_action_cycle(manager, owner, ref)

        try:
            anyio.run(main)
        finally:
            if server:
                server.close()
