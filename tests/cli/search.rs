//! `cairn search` over the sample and its re-scrape (one comment removed,
//! one edited): statuses, filters, order, and the JSON shape.

use crate::support::Env;
use crate::views::two_captures;
use serde_json::{json, Value};

fn search(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["search"];
    all.extend_from_slice(args);
    all.push("--json");
    env.ok(&all).json()
}

#[test]
fn matches_carry_their_status_in_time_order() {
    let env = Env::new();
    let (first, second) = two_captures(&env);
    let r = search(&env, &["-i", "geronimo"]);
    assert_eq!(r["count"], json!(2));
    let m = r["matches"].as_array().unwrap();
    assert_eq!((m[0]["author"].clone(), m[0]["status"].clone()), (json!("Aristo"), json!("removed")));
    assert_eq!(m[0]["last_seen"]["seq"], json!(first));
    assert_eq!((m[1]["author"].clone(), m[1]["status"].clone()), (json!("Uzair Javaid"), json!("present")));
    assert!(m[0]["posted_at"].as_str() < m[1]["posted_at"].as_str(), "time order");
    assert_eq!(r["as_of"]["seq"], json!(second));
    assert_eq!(
        r["matches"][0]["title"],
        json!("Senior US commanders discuss border cooperation with Kayani")
    );
    // Case matters without -i.
    assert_eq!(search(&env, &["geronimo"])["count"], json!(0));

    // Both versions of the edited comment, each with its own status.
    let edited = search(&env, &["Do You"]);
    let statuses: Vec<&str> =
        edited["matches"].as_array().unwrap().iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["superseded", "present"]);
    assert_eq!(search(&env, &["Do You", "--status", "superseded"])["count"], json!(1));
    assert_eq!(search(&env, &["Do You", "--status", "present", "--status", "removed"])["count"], json!(1));
    assert_eq!(search(&env, &["Really"])["matches"][0]["first_seen"]["seq"], json!(second));

    // The author is searched too; --author and --article narrow.
    assert_eq!(search(&env, &["^Aristo$"])["count"], json!(1));
    assert_eq!(search(&env, &["(?i)geronimo", "--author", "Aristo"])["count"], json!(1));
    assert_eq!(search(&env, &["(?i)geronimo", "--article", "kayani"])["count"], json!(2));
    // Observation time: both captures were recorded at 2023-11-14T22:13:20Z.
    assert_eq!(search(&env, &["(?i)geronimo", "--since", "2023-11-15"])["count"], json!(0));
    assert_eq!(search(&env, &["(?i)geronimo", "--until", "2023-11-14"])["count"], json!(2));

    // -F takes the pattern literally.
    assert_eq!(search(&env, &["-F", "GERONIMO????"])["count"], json!(1));
    let bad = env.run(&["search", "????"]).expect_code(2);
    assert!(bad.stderr.contains("pattern \"????\""), "{bad}");

    // Text: a count, then each match with its body indented.
    let text = env.ok(&["search", "-i", "geronimo"]).stdout;
    assert!(text.starts_with("2 matches\n"), "{text}");
    assert!(text.contains("· Aristo · removed, last seen seq"), "{text}");
    assert!(text.contains("\n    What will come after GERONIMO????\n"), "{text}");
    assert!(env.ok(&["search", "no such words anywhere"]).stdout.starts_with("0 matches"));
}
