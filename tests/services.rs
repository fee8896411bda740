//! The runner's throwaway servers (issue 16), through the real binary on the `services`
//! fixture pack, whose tests speak to PostgreSQL and Redis with std alone: the server starts,
//! the exercise passes, and afterwards no server process and no server folder is left; a
//! SIGTERM in the middle of a run leaves nothing either; without the binaries the exercise is
//! skipped with an explanation, `verify` does not count it and `list` marks it optional.
mod common;

use common::*;
use std::path::Path;

fn run_in(root: &Path, servers: &Path, args: &[&str]) -> std::process::Output {
    in_ws(root)
        .env("TMPDIR", servers)
        .args(args)
        .output()
        .unwrap()
}

fn passes_and_leaves_nothing(service: &str, rel: &str, name: &str) {
    if !have_server(service) {
        return;
    }
    let (_tmp, root, servers) = services_workspace();
    solve_services(&root, rel);
    let out = run_in(&root, &servers, &["run", name]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "{name} must pass:\n{all}");
    assert!(all.contains(&format!("{name} passed")), "{all}");
    assert_servers_gone(&servers);
}

#[test]
fn a_postgres_exercise_passes_against_a_throwaway_cluster_that_is_gone_afterwards() {
    passes_and_leaves_nothing("postgres", "01_postgres/pg_ping.rs", "pg_ping");
}

#[test]
fn a_redis_exercise_passes_against_a_throwaway_server_that_is_gone_afterwards() {
    passes_and_leaves_nothing("redis", "02_redis/redis_ping.rs", "redis_ping");
}

#[test]
fn verify_runs_both_tracks_with_their_servers_and_stops_them() {
    if !have_server("postgres") || !have_server("redis") {
        return;
    }
    let (_tmp, root, servers) = services_workspace();
    solve_services(&root, "00_core/plain.rs");
    solve_services(&root, "01_postgres/pg_ping.rs");
    solve_services(&root, "02_redis/redis_ping.rs");
    let out = run_in(&root, &servers, &["verify"]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("3/3 exercises pass"), "{all}");
    assert_servers_gone(&servers);
}

#[test]
fn sigterm_during_a_postgres_run_leaves_no_server_and_no_folder() {
    if !have_server("postgres") {
        return;
    }
    let (_tmp, root, servers) = services_workspace();
    solve_services(&root, "01_postgres/pg_ping.rs");
    // The fixture's test connects, then holds on until it is killed.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("backlings"))
        .args(["run", "pg_ping"])
        .current_dir(&root)
        .env_remove("CARGO_TARGET_DIR")
        .env("TMPDIR", &servers)
        .env("BACKLINGS_FIXTURE_HOLD", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The test binary itself, not rustc or the linker writing it.
    let is_test = |cmd: &str| {
        cmd.split(' ')
            .next()
            .is_some_and(|a| a.contains("/deps/pg_ping-"))
            && cmd.ends_with("--color never")
    };
    wait_until("the test to run against the server", 60, || {
        let procs = process_table();
        procs.iter().any(|p| is_test(&p.cmdline))
            && procs.iter().any(|p| {
                p.cmdline.contains("postgres -D") && p.cmdline.contains(&*servers.to_string_lossy())
            })
    });
    signal(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status}");
    assert_servers_gone(&servers);
    assert_nothing_left(&root, 0);
}

#[test]
fn without_the_binaries_run_explains_verify_passes_and_list_marks_the_tracks_optional() {
    let (_tmp, root, servers) = services_workspace();
    let hidden = |args: &[&str]| {
        services_bin()
            .current_dir(&root)
            .env("TMPDIR", &servers)
            .env("BACKLINGS_SERVICE_PATH", "")
            .args(args)
            .output()
            .unwrap()
    };
    solve_services(&root, "01_postgres/pg_ping.rs");
    let out = hidden(&["run", "pg_ping"]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    for want in [
        "needs a postgres server, so it is skipped",
        "initdb and pg_ctl not found",
        "apt-get install postgresql",
        "brew install postgresql@16",
        "`plain` teaches the same idea",
    ] {
        assert!(all.contains(want), "{want:?} missing from:\n{all}");
    }
    let out = hidden(&["run", "redis_ping"]);
    let all = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("apt-get install redis-server"), "{all}");
    assert!(all.contains("brew install redis"), "{all}");

    // Skipped, not failed: the learner who did the core exercise passes verify.
    solve_services(&root, "00_core/plain.rs");
    let out = hidden(&["verify"]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("1/1 exercises pass"), "{all}");
    assert!(all.contains("pg_ping") && all.contains("skipped"), "{all}");
    let st = state(&root);
    assert_eq!(
        st["exercises"]["pg_ping"]["runs"].as_integer(),
        Some(0),
        "a skip is not a run"
    );

    let out = hidden(&["list"]);
    let all = text(&out.stdout);
    assert!(all.contains("01_postgres 0/1 (optional)"), "{all}");
    assert!(all.contains("(optional: needs redis)"), "{all}");
    let out = hidden(&["list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let optional: Vec<&str> = json["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["optional"] == true)
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(optional, ["pg_ping", "redis_ping"]);

    let out = hidden(&["doctor"]);
    let all = text(&out.stdout);
    assert!(
        all.contains("PostgreSQL not found") && all.contains("Redis not found"),
        "{all}"
    );
    assert!(std::fs::read_dir(&servers).unwrap().next().is_none());
}

#[test]
fn doctor_starts_each_server_and_says_how_long_it_took() {
    if !have_server("postgres") || !have_server("redis") {
        return;
    }
    let (_tmp, root, servers) = services_workspace();
    let out = run_in(&root, &servers, &["doctor"]);
    let all = text(&out.stdout) + &text(&out.stderr);
    for title in ["PostgreSQL", "Redis"] {
        assert!(all.contains(&format!("{title} found in")), "{all}");
        assert!(
            all.contains(&format!("a throwaway {title} server starts")),
            "{all}"
        );
    }
    assert_servers_gone(&servers);
}

#[test]
fn dev_check_fails_when_servers_are_required_and_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("services"), &pack);
    let out = bin()
        .args(["dev", "check", "--only", "pg_ping"])
        .arg(&pack)
        .env("BACKLINGS_SERVICE_PATH", "")
        .env("BACKLINGS_REQUIRE_SERVICES", "1")
        .output()
        .unwrap();
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("servers are required here"), "{all}");
    let out = bin()
        .args(["dev", "check", "--only", "pg_ping"])
        .arg(&pack)
        .env("BACKLINGS_SERVICE_PATH", "")
        .env_remove("BACKLINGS_REQUIRE_SERVICES")
        .output()
        .unwrap();
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("Skipped 1 exercise(s)"), "{all}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "with every selected exercise skipped there is nothing to lint, and that passes: {all}"
    );
}

#[test]
fn dev_check_runs_the_tracks_against_their_servers_when_they_are_required() {
    if !have_server("postgres") || !have_server("redis") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("services"), &pack);
    let out = services_bin()
        .args(["dev", "check", "--require-services"])
        .arg(&pack)
        .output()
        .unwrap();
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("Skipped"), "{all}");
}

#[test]
fn dev_check_names_a_required_service_that_deps_toml_has_no_feature_for() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&fixture("services"), &pack);
    std::fs::write(pack.join("deps.toml"), "[dependencies]\n").unwrap();
    let out = bin()
        .args(["dev", "check", "--only", "redis_ping"])
        .arg(&pack)
        .env("BACKLINGS_SERVICE_PATH", "")
        .output()
        .unwrap();
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("requires \"redis\", but deps.toml declares no feature \"redis\""),
        "{all}"
    );
}
