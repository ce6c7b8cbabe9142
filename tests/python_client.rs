//! Runs the external-client suite (`tests/python`, the official Python MCP SDK) against the
//! binary under test. Needs `ISMS_TEST_PYTHON`: a Python with `tests/python/requirements.txt`
//! installed (`.ci/run` makes one). Absent, the suite is skipped with a notice, unless
//! `ISMS_REQUIRE_PYTHON` is set, which makes it a failure.

use std::process::Command;

#[test]
fn official_python_sdk_calls_every_tool_in_both_eras_over_both_transports() {
    let python = match std::env::var("ISMS_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            assert!(
                std::env::var_os("ISMS_REQUIRE_PYTHON").is_none(),
                "ISMS_REQUIRE_PYTHON is set but ISMS_TEST_PYTHON is not"
            );
            eprintln!("NOTICE: ISMS_TEST_PYTHON is not set; skipping the Python MCP client suite");
            return;
        }
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    let status = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", dir])
        .env("ISMS_BIN", env!("CARGO_BIN_EXE_isms"))
        .status()
        .expect("run pytest");
    assert!(status.success(), "the Python MCP client suite failed");
}
