//! The PostgreSQL server of `.ci/postgres.sh`, restarted under a test (same port, same
//! data). Included by path where it is used.

use std::process::{Command, Stdio};

/// Restarts the server of `.ci/postgres.sh` (same port, same data), waiting for it.
pub fn restart_server() {
    let dir = std::env::var("TOPOSTATE_PG_DIR").unwrap_or_else(|_| {
        panic!(
            "TOPOSTATE_PG_DIR is not set: the restart test restarts the cluster of .ci/postgres.sh"
        )
    });
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg("/usr/lib/postgresql/15/bin/pg_ctl")
        .args([
            "-D",
            &format!("{dir}/data"),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "restart",
        ])
        .args(["-l", &format!("{dir}/server.log")])
        .stdout(Stdio::null())
        .status()
        .expect("pg_ctl runs");
    assert!(status.success(), "pg_ctl restart failed: {status}");
}
