//! A small generated corpus (tools/gen_tribune.rs) ingested round by round
//! reports exactly the counts the generator predicts, and ingesting all
//! rounds at once reports their sum.

#[allow(dead_code)]
#[path = "../../tools/gen_tribune.rs"]
pub(crate) mod gen_tribune;

use crate::support::Env;
use gen_tribune::{generate, total, Params};

/// An ingest report without its `head`, in its own key order.
fn without_head(report: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(report).unwrap();
    v.as_object_mut().unwrap().shift_remove("head").expect("a head in the report");
    v.to_string()
}

#[test]
fn generated_rounds_ingest_to_the_predicted_counts() {
    let env = Env::new();
    let corpus = env.dir.path().join("corpus");
    let params = Params { articles: 12, comments: 16, rounds: 3, seed: 7, authors: 0 };
    let rounds = generate(&corpus, &params).unwrap();
    assert!(rounds[1].captures.duplicate > 0, "some byte-identical pages");
    assert!(rounds[1].captures.new > 0, "some changed pages");
    for (i, expected) in rounds.iter().enumerate() {
        let dir = corpus.join(format!("round-{i:02}"));
        let run = env.ok(&["ingest", "--json", &dir.display().to_string()]);
        assert_eq!(without_head(&run.stdout), expected.to_json(), "round {i}\n{run}");
    }

    let fresh = Env::new();
    let run = fresh.ok(&["ingest", "--json", &corpus.display().to_string()]);
    assert_eq!(without_head(&run.stdout), total(&rounds).to_json());
    assert_eq!(fresh.head(), env.head(), "same inputs, same order: same head");
    // The sample page plus generated re-scrapes verifies clean.
    env.ok(&[
        "ingest",
        &crate::support::fixture("tribune-2012-03-28-us-generals-kayani.txt").display().to_string(),
    ]);
    let run = env.ok(&["verify"]);
    assert!(run.stdout.contains("ok: no problems found"), "{run}");
}

#[test]
fn the_generator_is_deterministic() {
    let a = Env::new();
    let b = Env::new();
    let p = Params { articles: 3, comments: 8, rounds: 2, seed: 42, authors: 0 };
    assert_eq!(generate(a.dir.path(), &p).unwrap(), generate(b.dir.path(), &p).unwrap());
    for round in ["round-00", "round-01", "round-02"] {
        for i in 0..3 {
            let name = format!("{round}/article-{i:06}.txt");
            assert_eq!(
                std::fs::read(a.dir.path().join(&name)).unwrap(),
                std::fs::read(b.dir.path().join(&name)).unwrap()
            );
        }
    }
}
