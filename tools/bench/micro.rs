//! Criterion micro-benchmarks: canonical encoding and hashing, the tribune
//! parser, a single append, the id index's run files (write, merge,
//! lookup), and a captured page compressed whole and as a re-scrape's delta. Run with `cargo bench --bench micro` (docs/performance.md has
//! the numbers).

use cairn::ingest::{parse_document, Format, IngestOptions};
use cairn::model::{ArticleKey, Capture, CaptureItem, CapturedArticle, Comment, Event, Timestamp};
use cairn::store::{Archive, NewDocument, OpenMode};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

const PAGE: &str = include_str!("../../fixtures/tribune-2012-03-28-us-generals-kayani.txt");

fn comment(n: u64) -> Event {
    Event::Comment(Comment::new(
        ArticleKey("https://tribune.com.pk/story/356789/x/".into()),
        Some("Tony C."),
        Timestamp::parse_canonical("2012-03-28T20:09:00+05:00"),
        &format!("I recall that General Mattis, who is the boss man at Cent Com, said {n} things."),
    ))
}

fn encoding(c: &mut Criterion) {
    let event = comment(1);
    let mut g = c.benchmark_group("canonical");
    g.throughput(Throughput::Elements(1));
    g.bench_function("comment identity bytes", |b| b.iter(|| black_box(&event).identity_bytes()));
    g.bench_function("comment id (encode + BLAKE3)", |b| b.iter(|| black_box(&event).id()));
    g.finish();
}

fn parser(c: &mut Criterion) {
    let opts = IngestOptions { format: Some(Format::Tribune), ..IngestOptions::default() };
    let mut g = c.benchmark_group("tribune");
    g.throughput(Throughput::Bytes(PAGE.len() as u64));
    g.bench_function("parse the sample page (44 comments)", |b| {
        b.iter(|| parse_document("page.txt", black_box(PAGE.as_bytes()), &opts))
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut archive = Archive::open(&dir.path().join("a"), OpenMode::CreateIfMissing).expect("archive");
    let mut n = 0u64;
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one document: a comment and its capture, committed", |b| {
        b.iter_batched(
            || {
                n += 1;
                let raw = format!("document {n}").into_bytes();
                let event = comment(n);
                let capture = Event::Capture(Box::new(Capture {
                    blob: cairn::model::BlobId(*blake3::hash(&raw).as_bytes()),
                    source: "bench".into(),
                    source_url: None,
                    tz: None,
                    fetched_at: None,
                    format: "jsonl".into(),
                    parser_version: 1,
                    declared_comments: None,
                    articles: vec![CapturedArticle {
                        key: ArticleKey("https://tribune.com.pk/story/356789/x/".into()),
                        article: None,
                        comments: vec![CaptureItem {
                            id: event.id(),
                            parent: None,
                            possibly_truncated: false,
                        }],
                    }],
                    gaps: Some(Vec::new()),
                }));
                (raw, vec![event, capture])
            },
            |(raw, events)| archive.append_document(NewDocument::new(&raw, events), false).expect("append"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn run_id(n: u64) -> cairn::model::EventId {
    cairn::model::EventId(*blake3::hash(&n.to_be_bytes()).as_bytes())
}

fn run_entries(from: u64, n: u64) -> Vec<cairn::store::idruns::IdSeq> {
    (from..from + n).map(|s| (run_id(s), cairn::model::Seq(s))).collect()
}

fn id_runs(c: &mut Criterion) {
    use cairn::store::idruns::IdRuns;
    let mut g = c.benchmark_group("id runs");
    g.sample_size(20);
    g.throughput(Throughput::Elements(16_384));
    g.bench_function("write one run of 16,384 ids (a commit group)", |b| {
        b.iter_batched(
            || (tempfile::TempDir::new().expect("temp dir"), run_entries(1, 16_384)),
            |(dir, entries)| {
                let mut runs = IdRuns::open(dir.path(), true).expect("open");
                runs.add(entries).expect("add");
                dir
            },
            BatchSize::LargeInput,
        )
    });
    // A tier's merge: the last of MERGE_WIDTH runs of 16,384 ids written,
    // then all of them merged into one.
    let width = cairn::store::idruns::MERGE_WIDTH as u64;
    g.throughput(Throughput::Elements(width * 16_384));
    g.bench_function(
        format!("write a run of 16,384 ids and merge it with the {} before it", width - 1),
        |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::TempDir::new().expect("temp dir");
                    let mut runs = IdRuns::open(dir.path(), true).expect("open");
                    for r in 0..width - 1 {
                        runs.add(run_entries(1 + r * 16_384, 16_384)).expect("add");
                    }
                    assert_eq!(runs.len() as u64, width - 1);
                    (dir, run_entries(1 + (width - 1) * 16_384, 16_384))
                },
                |(dir, entries)| {
                    let mut runs = IdRuns::open(dir.path(), true).expect("open");
                    runs.add(entries).expect("add");
                    assert_eq!(runs.len(), 1);
                    dir
                },
                BatchSize::LargeInput,
            )
        },
    );
    // 1M ids, committed in groups of 16,384 (the merges keep a few runs).
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut runs = IdRuns::open(dir.path(), true).expect("open");
    let mut next = 1;
    while next <= 1_000_000 {
        let n = 16_384.min(1_000_001 - next);
        runs.add(run_entries(next, n)).expect("add");
        next += n;
    }
    g.throughput(Throughput::Elements(1));
    let mut k = 0u64;
    g.bench_function("look up an id among 1M (present)", |b| {
        b.iter(|| {
            k = (k + 7_919) % 1_000_000 + 1;
            runs.seq_of(&run_id(k)).expect("lookup")
        })
    });
    // A thread's comments: 100 ids committed together, looked up at once.
    g.throughput(Throughput::Elements(100));
    g.bench_function("look up 100 ids committed together among 1M (seqs_of)", |b| {
        b.iter(|| {
            k = (k + 7_919) % 999_900 + 1;
            let ids: Vec<_> = (k..k + 100).map(run_id).collect();
            runs.seqs_of(&ids).expect("lookup")
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("look up an id among 1M (absent)", |b| {
        b.iter(|| {
            k += 1;
            runs.seq_of(&run_id(2_000_000 + k)).expect("lookup")
        })
    });
    g.finish();
}

/// A leaf's data of a typical size (a comment entry: tag, seq, id, time).
fn leaf_data(n: u64) -> Vec<u8> {
    let mut d = b"\0\0\0\0\0\0\0\x0ecairn/v1/entry".to_vec();
    d.extend_from_slice(&n.to_be_bytes());
    d.extend_from_slice(blake3::hash(&n.to_be_bytes()).as_bytes());
    d.extend_from_slice(b"\0\0\0\0\0\0\0\x192026-11-28T07:21:33+00:00\0");
    d
}

fn merkle(c: &mut Criterion) {
    use cairn::transparency::file::{StoredTree, TreeFile};
    use cairn::transparency::merkle::{self, leaf_hash};
    let mut g = c.benchmark_group("merkle");
    let leaves: Vec<Vec<u8>> = (0..16_384).map(leaf_data).collect();
    g.throughput(Throughput::Elements(leaves.len() as u64));
    g.bench_function("hash and add 16,384 leaves (a commit group)", |b| {
        b.iter_batched(
            || {
                let mut t = TreeFile::memory();
                t.load_frontier(Vec::new()).unwrap();
                t
            },
            |mut t| {
                t.push(leaves.iter().map(|d| leaf_hash(d))).unwrap();
                t.sync().unwrap();
                t
            },
            BatchSize::LargeInput,
        )
    });
    // A tree of 1M leaves in memory; leaves below a tile hashed again from
    // their data, as `cairn prove` reads them from the log.
    let n = 1_048_583u64;
    let mut t = TreeFile::memory();
    t.load_frontier(Vec::new()).unwrap();
    t.push((0..n).map(|i| leaf_hash(&leaf_data(i)))).unwrap();
    t.sync().unwrap();
    let read =
        |first: u64, count: u64| Ok((first..first + count).map(|i| leaf_hash(&leaf_data(i))).collect());
    g.throughput(Throughput::Elements(1));
    g.bench_function("inclusion proof in a tree of 1M leaves", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = (i + 104_729) % n;
            merkle::inclusion_proof(&mut StoredTree::new(&t, n, read), i, n).unwrap()
        })
    });
    g.bench_function("consistency proof between trees of 1M leaves", |b| {
        let mut m = 1u64;
        b.iter(|| {
            m = (m + 104_729) % n + 1;
            merkle::consistency_proof(&mut StoredTree::new(&t, n, read), m, n).unwrap()
        })
    });
    g.finish();
}

/// The sample page compressed whole, and a re-scrape of it (two comments
/// more) made a delta against it: what each new capture and each changed
/// re-scrape costs on an ingest's reader threads.
fn blobs(c: &mut Criterion) {
    use cairn::model::BlobId;
    use cairn::store::blobs::{compress_whole, BlobDir};
    use cairn::store::records::{Locator, RecordsEnd};
    let base = PAGE.as_bytes().to_vec();
    let marker = "Leave Your Reply Below";
    let at = PAGE.find(marker).unwrap_or(PAGE.len());
    let extra =
        "  • reader\n    Mar 29, 2012 - 9:15AM\n    One more comment, posted after the first scrape.\n\n";
    let rescrape = format!("{}{extra}{extra}{}", &PAGE[..at], &PAGE[at..]).into_bytes();
    let id = |raw: &[u8]| BlobId(*blake3::hash(raw).as_bytes());
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut packs = BlobDir::new(dir.path().join("captures"));
    let none = |_: &BlobId| Ok(None);
    packs.stage(&id(&base), &base, None, None, &none).expect("stage");
    let (stored, _) = packs.sync_staged(RecordsEnd::default()).expect("sync").expect("a blob");
    let stored: std::collections::HashMap<BlobId, Locator> = stored.into_iter().collect();
    let lookup = |b: &BlobId| Ok(stored.get(b).copied());
    let mut g = c.benchmark_group("blobs");
    g.throughput(Throughput::Bytes(base.len() as u64));
    g.bench_function("compress the sample page whole (22 KB, zstd 3)", |b| {
        b.iter(|| compress_whole(black_box(&base)).expect("compress"))
    });
    g.bench_function("a re-scrape's delta against the stored page", |b| {
        b.iter(|| {
            packs.delta_quietly(black_box(&rescrape), &id(&base), &lookup).expect("delta").expect("smaller")
        })
    });
    g.finish();
}

criterion_group!(benches, encoding, parser, append, id_runs, merkle, blobs);
criterion_main!(benches);
