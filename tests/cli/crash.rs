//! Crash safety: `cairn ingest` and `cairn replay` killed with SIGKILL at
//! random moments. After every kill the archive opens and verifies, holding
//! whole documents only; finishing the work reaches exactly the head (and
//! view digests) of an uninterrupted run.

use crate::generated::gen_tribune::{generate, Params, Rng};
use crate::support::Env;
use std::time::{Duration, Instant};

/// Runs `cairn ARGS` and SIGKILLs it after `after` (if still running).
fn run_and_kill(env: &Env, args: &[&str], after: Duration) -> bool {
    let mut child = env
        .command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cairn starts");
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

fn timed(env: &Env, args: &[&str]) -> Duration {
    let start = Instant::now();
    env.ok(args);
    start.elapsed()
}

fn digests(env: &Env) -> Vec<serde_json::Value> {
    let r = env.ok(&["replay", "--json"]).json();
    r["views"].as_array().unwrap().iter().map(|v| v["digest"].clone()).collect()
}

#[test]
fn killed_ingests_and_replays_leave_whole_documents() {
    let reference = Env::new();
    let corpus = reference.dir.path().join("corpus");
    generate(&corpus, &Params { articles: 30, comments: 20, rounds: 2, seed: 11, authors: 0 }).unwrap();
    let corpus = corpus.display().to_string();
    let full = timed(&reference, &["ingest", "-q", &corpus]);
    let expected_head = reference.head();

    let env = Env::new();
    let mut rng = Rng(99);
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 20 && attempts < 200 {
        attempts += 1;
        let after = Duration::from_micros(rng.next_u64() % (full.as_micros() as u64).max(1000));
        let killed = run_and_kill(&env, &["ingest", "-q", &corpus], after);
        if killed {
            kills += 1;
        }
        if env.archive.join("cairn-archive").exists() {
            let run = env.run(&["verify"]);
            assert_eq!(run.code, 0, "after kill {kills} (at {after:?}) verify failed\n{run}");
        }
        if !killed {
            // The ingest finished: start again from nothing, so that the
            // next kills land in the middle of real work.
            std::fs::remove_dir_all(&env.archive).unwrap();
        }
    }
    assert!(kills >= 20, "only {kills} kills landed in {attempts} attempts");
    env.ok(&["ingest", "-q", &corpus]);
    assert_eq!(env.head(), expected_head, "finishing after the kills reaches the uninterrupted head");
    env.ok(&["verify"]);

    // Replay, killed at random moments.
    let expected_digests = digests(&reference);
    let replay_time = timed(&env, &["replay"]);
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 20 && attempts < 200 {
        attempts += 1;
        let after =
            Duration::from_micros(rng.next_u64() % (replay_time.as_micros() as u64 * 3 / 2).max(1000));
        if run_and_kill(&env, &["replay"], after) {
            kills += 1;
        }
        let run = env.run(&["verify"]);
        assert_eq!(run.code, 0, "after replay kill {kills} verify failed\n{run}");
        env.ok(&["articles"]);
    }
    assert!(kills >= 20, "only {kills} replay kills landed in {attempts} attempts");
    assert_eq!(digests(&env), expected_digests);
    assert_eq!(env.head(), expected_head);

    // `repair` killed anywhere: the next command opens the archive with
    // every entry (the rebuild commits consistent heads as it goes, and an
    // open catches up the rest from the log files).
    let checkpoint = expected_head.replace(' ', ":");
    let repair_time = timed(&env, &["repair"]);
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 10 && attempts < 100 {
        attempts += 1;
        let after =
            Duration::from_micros(rng.next_u64() % (repair_time.as_micros() as u64 * 3 / 2).max(1000));
        if run_and_kill(&env, &["repair"], after) {
            kills += 1;
        }
        let run = env.run(&["verify", "--checkpoint", &checkpoint]);
        assert_eq!(run.code, 0, "after repair kill {kills} verify failed\n{run}");
    }
    assert!(kills >= 10, "only {kills} repair kills landed in {attempts} attempts");
    assert_eq!(env.head(), expected_head);
    assert_eq!(digests(&env), expected_digests);
}
