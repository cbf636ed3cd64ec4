//! A deterministic (seeded) generator of synthetic scrapes in the tribune
//! page layout, for tests (small) and benchmarks (large).
//!
//! ```text
//! cargo run --release --example gen-tribune -- OUT_DIR --articles 1000 --comments 100 --rounds 3 --seed 1
//! ```
//!
//! It writes `OUT_DIR/round-00/article-000000.txt`, ... : round 0 is the
//! first scrape of every article; each later round re-scrapes every article
//! with drift. About half the pages of a later round are byte-identical to
//! the previous round; the others get new comments, removals, edits (a
//! changed body under the same author and time), and rendering noise (CRLF
//! line endings, trailing spaces, the `Recommend` label glued to bodies with
//! one blank line instead of two).
//!
//! It prints, one JSON object per line, the exact counts that a correct
//! `cairn ingest --json` of each round must report (in the order the rounds
//! are ingested), then the totals for ingesting the whole directory at once.
//! The same seed and parameters always produce the same bytes.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Clone, Debug)]
pub struct Params {
    /// Number of articles.
    pub articles: usize,
    /// About this many comments per article in round 0.
    pub comments: usize,
    /// Re-scrape rounds after round 0.
    pub rounds: usize,
    /// The seed.
    pub seed: u64,
    /// How many distinct commenters: 0 draws each author from 16 fixed
    /// names, evenly; N draws from N names (`reader1` ...) with Zipf's law
    /// (the k-th name about 1/k as often as the first), as real comment
    /// sections have a few regulars and a long tail of one-time posters.
    pub authors: usize,
}

/// New and duplicate counts for one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewDup {
    /// Not seen before.
    pub new: u64,
    /// Seen before.
    pub duplicate: u64,
}

/// The counts an ingest must report, in the shape of `ingest --json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Input files.
    pub inputs: u64,
    /// Articles.
    pub articles: NewDup,
    /// Comments.
    pub comments: NewDup,
    /// Captures.
    pub captures: NewDup,
    /// Raw bytes written.
    pub bytes: u64,
}

impl Expected {
    /// The JSON `cairn ingest --json` prints, without its `head` (which
    /// the generator cannot know).
    pub fn to_json(self) -> String {
        let nd = |x: &NewDup| format!("{{\"new\":{},\"duplicate\":{}}}", x.new, x.duplicate);
        format!(
            "{{\"articles\":{},\"comments\":{},\"captures\":{},\"merges\":{{\"new\":0,\"duplicate\":0}},\"inputs\":{},\"errors\":[],\"warnings\":[]}}",
            nd(&self.articles),
            nd(&self.comments),
            nd(&self.captures),
            self.inputs,
        )
    }

    fn add(&mut self, o: &Expected) {
        self.inputs += o.inputs;
        for (a, b) in [
            (&mut self.articles, &o.articles),
            (&mut self.comments, &o.comments),
            (&mut self.captures, &o.captures),
        ] {
            a.new += b.new;
            a.duplicate += b.duplicate;
        }
        self.bytes += o.bytes;
    }
}

/// SplitMix64: small, fast, deterministic (the tests use it too).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

const WORDS: &[&str] = &[
    "army",
    "border",
    "talks",
    "general",
    "nato",
    "supply",
    "route",
    "parliament",
    "policy",
    "trust",
    "cooperation",
    "drone",
    "meeting",
    "apology",
    "dollars",
    "pakistan",
    "nation",
    "media",
    "peace",
    "taliban",
    "government",
    "people",
    "country",
    "soldiers",
    "relations",
    "india",
    "afghanistan",
    "we",
    "they",
    "must",
    "never",
    "always",
    "should",
    "the",
    "a",
    "of",
    "and",
    "is",
    "not",
    "this",
];
const AUTHORS: &[&str] = &[
    "ahmad",
    "Tony C.",
    "adeel759",
    "Shah",
    "Parvez",
    "Cautious",
    "Ali - Karachi",
    "ANONYMOUS",
    "MK",
    "Anonymous",
    "logic Europe",
    "ayesha",
    "Blithe",
    "Hadi Ansari",
    "Usman786",
    "Yusuf",
];

#[derive(Clone)]
struct GenComment {
    author: Option<String>,
    time: NaiveDateTime,
    paragraphs: Vec<String>,
    nested: bool,
}

struct Page {
    title: String,
    published: NaiveDate,
    body: Vec<String>,
    comments: Vec<GenComment>,
    next_minute: i64,
    last_render: String,
}

fn sentence(rng: &mut Rng, min: usize, max: usize) -> String {
    let n = min + rng.below(max - min + 1);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.below(WORDS.len())]);
    }
    s.push('.');
    s
}

/// Where authors come from ([`Params::authors`]).
enum Authors {
    Fixed,
    /// The cumulative Zipf weights of `reader1`, `reader2`, ...
    Zipf(Vec<f64>),
}

impl Authors {
    fn new(n: usize) -> Authors {
        if n == 0 {
            return Authors::Fixed;
        }
        let mut sum = 0.0;
        Authors::Zipf(
            (1..=n)
                .map(|k| {
                    sum += 1.0 / k as f64;
                    sum
                })
                .collect(),
        )
    }

    fn draw(&self, rng: &mut Rng) -> String {
        match self {
            Authors::Fixed => AUTHORS[rng.below(AUTHORS.len())].to_string(),
            Authors::Zipf(cumulative) => {
                let total = cumulative.last().copied().unwrap_or(1.0);
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
                let k = cumulative.partition_point(|c| *c <= u).min(cumulative.len() - 1);
                format!("reader{}", k + 1)
            }
        }
    }
}

fn new_comment(rng: &mut Rng, page: &mut Page, authors: &Authors) -> GenComment {
    let time = page.published.and_hms_opt(9, 0, 0).unwrap_or_default() + Duration::minutes(page.next_minute);
    page.next_minute += 1 + rng.below(20) as i64;
    let author = if rng.chance(12) { None } else { Some(authors.draw(rng)) };
    let paragraphs = (0..if rng.chance(20) { 2 } else { 1 }).map(|_| sentence(rng, 4, 40)).collect();
    let nested = author.is_none() && rng.chance(40);
    GenComment { author, time, paragraphs, nested }
}

#[derive(Clone, Copy, Default)]
struct Noise {
    crlf: bool,
    trailing: bool,
    recommend: bool,
}

fn time_text(t: &NaiveDateTime) -> String {
    t.format("%b %-d, %Y - %-I:%M%p").to_string()
}

fn render(page: &Page, noise: Noise) -> String {
    let mut s = String::new();
    let _ = write!(s, "{}\n\nPublished: {}\n", page.title, page.published.format("%B %-d, %Y"));
    for p in &page.body {
        let _ = write!(s, "{p}\n\n");
    }
    let _ = write!(s, "Facebook Conversations\n\nReader Comments ({})\n\n", page.comments.len());
    let gap = if noise.recommend { "\n\n" } else { "\n\n\n" };
    for (i, c) in page.comments.iter().enumerate() {
        match (&c.author, c.nested && i > 0) {
            (None, true) => {
                let _ = write!(s, "    {}\n\n", time_text(&c.time));
            }
            (None, false) => {
                let _ = write!(s, "  • {}\n\n", time_text(&c.time));
            }
            (Some(a), _) => {
                let _ = write!(s, "  • {a}\n    {}\n\n", time_text(&c.time));
            }
        }
        let body: Vec<String> = c.paragraphs.iter().map(|p| format!("    {p}")).collect();
        s.push_str(&body.join("\n\n"));
        if noise.recommend {
            s.push_str("Recommend");
        }
        s.push_str(gap);
    }
    s.push_str("More in Pakistan\n");
    if noise.trailing {
        s = s.lines().map(|l| format!("{l}  \n")).collect();
    }
    if noise.crlf {
        s = s.replace('\n', "\r\n");
    }
    s
}

/// Writes the corpus under `out` and returns the expected counts per round
/// (index 0 is round 0).
pub fn generate(out: &Path, p: &Params) -> std::io::Result<Vec<Expected>> {
    let mut rng = Rng(p.seed);
    let authors = Authors::new(p.authors);
    let base = NaiveDate::from_ymd_opt(2012, 3, 28).unwrap_or_default();
    let mut pages: Vec<Page> = (0..p.articles)
        .map(|i| Page {
            title: format!("Story {i}: {}", sentence(&mut rng, 3, 8).trim_end_matches('.')),
            published: base + Duration::days((i % 700) as i64),
            body: (0..3).map(|_| sentence(&mut rng, 20, 60)).collect(),
            comments: Vec::new(),
            next_minute: 0,
            last_render: String::new(),
        })
        .collect();
    let mut seen_comments: HashSet<(usize, Option<String>, NaiveDateTime, String)> = HashSet::new();
    let mut seen_blobs: HashSet<[u8; 32]> = HashSet::new();
    let mut rounds = Vec::new();
    for round in 0..=p.rounds {
        let dir: PathBuf = out.join(format!("round-{round:02}"));
        std::fs::create_dir_all(&dir)?;
        let mut exp = Expected::default();
        for (i, page) in pages.iter_mut().enumerate() {
            let text = if round == 0 {
                let n = p.comments / 2 + rng.below(p.comments + 1);
                for _ in 0..n {
                    let c = new_comment(&mut rng, page, &authors);
                    page.comments.push(c);
                }
                render(page, Noise::default())
            } else if rng.chance(50) {
                page.last_render.clone()
            } else {
                for _ in 0..rng.below(4) {
                    let c = new_comment(&mut rng, page, &authors);
                    page.comments.push(c);
                }
                if !page.comments.is_empty() && rng.chance(30) {
                    let at = rng.below(page.comments.len());
                    page.comments.remove(at);
                }
                if !page.comments.is_empty() && rng.chance(30) {
                    let at = rng.below(page.comments.len());
                    let extra = sentence(&mut rng, 2, 6);
                    if let Some(last) = page.comments[at].paragraphs.last_mut() {
                        last.push(' ');
                        last.push_str(&extra);
                    }
                }
                let noise =
                    Noise { crlf: rng.chance(30), trailing: rng.chance(30), recommend: rng.chance(30) };
                render(page, noise)
            };
            std::fs::write(dir.join(format!("article-{i:06}.txt")), &text)?;
            exp.inputs += 1;
            exp.bytes += text.len() as u64;
            if round == 0 {
                exp.articles.new += 1;
            } else {
                exp.articles.duplicate += 1;
            }
            if seen_blobs.insert(*blake3::hash(text.as_bytes()).as_bytes()) {
                exp.captures.new += 1;
            } else {
                exp.captures.duplicate += 1;
            }
            for c in &page.comments {
                let key = (i, c.author.clone(), c.time, c.paragraphs.join("\n\n"));
                if seen_comments.insert(key) {
                    exp.comments.new += 1;
                } else {
                    exp.comments.duplicate += 1;
                }
            }
            page.last_render = text;
        }
        rounds.push(exp);
    }
    Ok(rounds)
}

/// The totals for ingesting all rounds at once.
pub fn total(rounds: &[Expected]) -> Expected {
    let mut t = Expected::default();
    for r in rounds {
        t.add(r);
    }
    t
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = None;
    let mut p = Params { articles: 100, comments: 50, rounds: 3, seed: 1, authors: 0 };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("gen-tribune: {name} needs a number");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!(
                    "gen-tribune: writes synthetic Express Tribune scrapes with re-scrape drift into OUT_DIR/round-NN/,\n\
                     and prints the counts a correct ingest of each round reports (one JSON object per round).\n\n\
                     usage: gen-tribune OUT_DIR [--articles N] [--comments M] [--rounds K] [--seed S] [--authors N]\n\
                     --authors N: N commenters drawn by Zipf's law (default 0: 16 fixed names, evenly)\n\
                     defaults: --articles 100 --comments 50 --rounds 3 --seed 1 --authors 0"
                );
                std::process::exit(0)
            }
            "--articles" => p.articles = num("--articles"),
            "--comments" => p.comments = num("--comments"),
            "--rounds" => p.rounds = num("--rounds"),
            "--seed" => p.seed = num("--seed") as u64,
            "--authors" => p.authors = num("--authors"),
            s if !s.starts_with('-') && out.is_none() => out = Some(PathBuf::from(s)),
            other => {
                eprintln!("gen-tribune: unknown argument {other}\nusage: gen-tribune OUT_DIR [--articles N] [--comments M] [--rounds K] [--seed S] [--authors N]");
                std::process::exit(2)
            }
        }
    }
    let Some(out) = out else {
        eprintln!(
            "usage: gen-tribune OUT_DIR [--articles N] [--comments M] [--rounds K] [--seed S] [--authors N]"
        );
        std::process::exit(2)
    };
    match generate(&out, &p) {
        Ok(rounds) => {
            for r in &rounds {
                println!("{}", r.to_json());
            }
            let t = total(&rounds);
            println!("{}", t.to_json());
            eprintln!(
                "gen-tribune: {} files, {} bytes, {} unique comments",
                t.inputs, t.bytes, t.comments.new
            );
        }
        Err(e) => {
            eprintln!("gen-tribune: {}: {e}", out.display());
            std::process::exit(2)
        }
    }
}
