//! Unit tests of the archive rules, over the in-memory store and the sled
//! store.

use super::*;
use crate::error::Error;
use crate::model::chain_step;
use crate::model::{ArticleKey, Capture, CaptureItem, CapturedArticle, Comment, Event};
use tempfile::TempDir;

fn comment(body: &str) -> Event {
    Event::Comment(Comment::new(ArticleKey("https://example.com/a".into()), Some("x"), None, body))
}

fn document<'a>(raw: &'a [u8], bodies: &[&str]) -> NewDocument<'a> {
    let mut events: Vec<Event> = bodies.iter().map(|b| comment(b)).collect();
    let comments =
        events.iter().map(|e| CaptureItem { id: e.id(), parent: None, possibly_truncated: false }).collect();
    let articles =
        vec![CapturedArticle { key: ArticleKey("https://example.com/a".into()), article: None, comments }];
    events.push(Event::Capture(Box::new(Capture {
        blob: BlobId(*blake3::hash(raw).as_bytes()),
        source: "t".into(),
        source_url: None,
        tz: None,
        fetched_at: None,
        format: "jsonl".into(),
        parser_version: 1,
        declared_comments: None,
        articles,
        gaps: Some(Vec::new()),
    })));
    NewDocument::new(raw, events)
}

fn replayed_head(archive: &Archive) -> HeadState {
    let mut head = HeadState::default();
    for e in archive.entries_from(Seq(1)).unwrap() {
        let e = e.unwrap();
        assert_eq!(e.seq, head.seq.next(), "seqs are dense");
        assert_eq!(e.event.id(), e.id, "stored id matches the fields");
        head.seq = e.seq;
        head.hash = chain_step(&head.hash, &e.entry_hash());
        head.counts.add(e.event.kind());
    }
    head
}

#[test]
fn appends_new_events_once() {
    let mut a = Archive::in_memory();
    let out = a.append_document(document(b"one", &["a", "b", "a"]), false).unwrap();
    assert_eq!(out.new.comments, 2);
    assert_eq!(out.duplicate.comments, 1, "a repeat within a document is a duplicate");
    assert_eq!(out.new.captures, 1);
    assert_eq!(out.appended, Some((Seq(1), Seq(3))));
    let head = *a.head();
    assert_eq!(replayed_head(&a), head);

    let again = a.append_document(document(b"one", &["a", "b", "a"]), false).unwrap();
    assert_eq!(again.new.total(), 0);
    assert_eq!(*a.head(), head, "nothing new: head unchanged");

    let more = a.append_document(document(b"two", &["b", "c"]), false).unwrap();
    assert_eq!((more.new.comments, more.duplicate.comments, more.new.captures), (1, 1, 1));
    assert_eq!(replayed_head(&a), *a.head());
    assert_eq!(a.head().counts, KindCounts { articles: 0, comments: 3, captures: 2, merges: 0 });
}

#[test]
fn dry_run_writes_nothing() {
    let mut a = Archive::in_memory();
    let out = a.append_document(document(b"one", &["a"]), true).unwrap();
    assert_eq!(out.new.comments, 1);
    assert_eq!(out.appended, None);
    assert_eq!(*a.head(), HeadState::default());
    assert!(a.store().blob_ids().unwrap().is_empty());
}

#[test]
fn capture_must_name_its_bytes() {
    let mut a = Archive::in_memory();
    let mut doc = document(b"one", &["a"]);
    doc.raw = b"other";
    assert!(a.append_document(doc, false).is_err());
    assert_eq!(a.head().seq, Seq(0));
}

#[test]
fn prefix_lookup() {
    let mut a = Archive::in_memory();
    a.append_document(document(b"one", &["a", "b", "c", "d", "e", "f"]), false).unwrap();
    let id = comment("a").id();
    assert_eq!(a.resolve_prefix(&id.to_hex()[..10]).unwrap().0, id);
    assert!(matches!(a.resolve_prefix("zz"), Err(Error::Usage(_))));
    // With 7 ids some single hex digit is shared by at least two of them.
    let ids: Vec<String> = a.entries_from(Seq(1)).unwrap().map(|e| e.unwrap().id.to_hex()).collect();
    let shared = (0..16u8)
        .map(|d| format!("{d:x}"))
        .find(|d| ids.iter().filter(|i| i.starts_with(d.as_str())).count() >= 2);
    if let Some(d) = shared {
        assert!(matches!(a.resolve_prefix(&d), Err(Error::Ambiguous { .. })));
    }
    let unused = (0..=255u8)
        .map(|b| format!("{b:02x}"))
        .find(|p| !ids.iter().any(|i| i.starts_with(p.as_str())))
        .unwrap();
    assert!(matches!(a.resolve_prefix(&unused), Err(Error::NotFound(_))));
}

/// Opens the archive at `path` again, waiting while sled's background
/// thread may still hold the database after a drop (the CLI's --wait
/// covers this between processes).
fn reopen(path: &std::path::Path) -> Archive {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match Archive::open(path, OpenMode::MustExist) {
            Err(Error::ArchiveInUse(..)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => break other.unwrap(),
        }
    }
}

#[test]
fn sled_store_persists_and_stays_dense_after_reopen() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("arch");
    let head = {
        let mut a = Archive::open(&path, OpenMode::CreateIfMissing).unwrap();
        a.append_document(document(b"one", &["a", "b"]), false).unwrap();
        a.flush().unwrap();
        *a.head()
    };
    let mut a = reopen(&path);
    assert_eq!(*a.head(), head);
    a.append_document(document(b"two", &["c"]), false).unwrap();
    a.flush().unwrap();
    assert_eq!(a.head().seq, Seq(5));
    assert_eq!(replayed_head(&a), *a.head());
    // Reading from the middle of a segment.
    let from2: Vec<u64> = a.entries_from(Seq(2)).unwrap().map(|e| e.unwrap().seq.0).collect();
    assert_eq!(from2, vec![2, 3, 4, 5]);
    assert_eq!(a.entry(Seq(4)).unwrap().event, comment("c"));
    assert!(matches!(a.entry(Seq(6)), Err(Error::MissingEntry(_))));
    assert_eq!(a.store().get_blob(&BlobId(*blake3::hash(b"two").as_bytes())).unwrap(), b"two");
}

#[test]
fn a_catch_up_over_several_batches_counts_every_entry() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("arch");
    let head = {
        let mut a = Archive::open(&path, OpenMode::CreateIfMissing).unwrap();
        for i in 0..40 {
            let bodies: Vec<String> = (0..5).map(|j| format!("comment {j} of {i}")).collect();
            let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
            let raw = format!("page {i}");
            a.append_document(document(raw.as_bytes(), &bodies), false).unwrap();
        }
        a.flush().unwrap();
        *a.head()
    };
    assert!(head.seq.0 > 3 * 64, "more entries than three catch-up batches");
    std::fs::remove_dir_all(path.join("db")).unwrap();
    let a = reopen(&path);
    assert_eq!(*a.head(), head);
    assert_eq!(a.store().caught_up(), head.seq.0, "every entry caught up is counted");
}

/// An archive at `path` with six pages of four comments each.
fn six_pages(path: &std::path::Path) -> Archive {
    let mut a = Archive::open(path, OpenMode::CreateIfMissing).unwrap();
    for i in 0..6 {
        let bodies: Vec<String> = (0..4).map(|j| format!("comment {j} of {i}")).collect();
        let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
        a.append_document(document(format!("page {i}").as_bytes(), &bodies), false).unwrap();
    }
    a
}

#[test]
fn verify_in_passes_reports_progress_in_every_pass() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("arch");
    let mut a = six_pages(&path);
    a.flush().unwrap();
    let entries = a.head().seq.0;
    let opts =
        crate::audit::verify::VerifyOptions { quick: true, ids_per_pass: Some(8), ..Default::default() };
    // How many passes there are depends on how the ids fall into the
    // passes' hash ranges (a hasher keyed afresh in each process): each
    // pass's progress starts again from its first segment.
    let (mut passes, mut last, mut reached) = (0u64, u64::MAX, 0u64);
    let report = crate::audit::verify::verify(&a, None, &opts, |n| {
        passes += u64::from(n < last);
        last = n;
        reached += u64::from(n == entries);
    })
    .unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(passes >= 2, "{entries} ids at 8 per pass are verified in passes");
    assert_eq!(reached, passes, "the log's end reported in each of the {passes} passes");
}

#[test]
fn second_open_is_refused_clearly() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("arch");
    let _first = Archive::open(&path, OpenMode::CreateIfMissing).unwrap();
    let second = Archive::open(&path, OpenMode::CreateIfMissing);
    match second {
        Err(e @ Error::ArchiveInUse(..)) => {
            // The holder recorded itself: this process, as a library user.
            assert_eq!(
                e.to_string(),
                format!(
                    "archive {} is in use by another cairn process: cairn {} (library); `--wait SECONDS` \
                     waits for it to finish (reading commands wait 30 s by default)",
                    path.display(),
                    std::process::id()
                )
            )
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("second open succeeded"),
    }
}

#[test]
fn refuses_missing_and_foreign_directories() {
    let dir = TempDir::new().unwrap();
    assert!(matches!(Archive::open(&dir.path().join("none"), OpenMode::MustExist), Err(Error::NoArchive(_))));
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    assert!(matches!(Archive::open(dir.path(), OpenMode::CreateIfMissing), Err(Error::NotAnArchive { .. })));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written into a foreign directory");
}

#[test]
fn events_by_id_reads_each_segment_once_and_finds_everything() {
    let dir = TempDir::new().unwrap();
    let mut a = Archive::open(&dir.path().join("arch"), OpenMode::CreateIfMissing).unwrap();
    a.append_document(document(b"one", &["a", "b"]), false).unwrap();
    a.append_document(document(b"two", &["c"]), false).unwrap();
    let ids = [comment("c").id(), comment("a").id(), comment("b").id()];
    let found = a.events_by_id(&ids).unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(found[&comment("c").id()], comment("c"));
    assert!(matches!(a.events_by_id(&[comment("zzz").id()]), Err(Error::NotFound(_))));
}

/// Looked up through one article's id set, ids of that article and of
/// another (found in the id index) give what `events_by_id` gives, in both
/// stores; an id in neither is not found.
#[test]
fn events_by_id_in_an_article_equal_events_by_id() {
    let dir = TempDir::new().unwrap();
    let other =
        Event::Comment(Comment::new(ArticleKey("https://example.com/b".into()), Some("y"), None, "there"));
    for mut a in
        [Archive::in_memory(), Archive::open(&dir.path().join("arch"), OpenMode::CreateIfMissing).unwrap()]
    {
        a.append_document(document(b"one", &["a", "b"]), false).unwrap();
        let mut doc = document(b"two", &["c"]);
        doc.events.insert(0, other.clone());
        a.append_document(doc, false).unwrap();
        let ids = [comment("c").id(), other.id(), comment("a").id(), comment("b").id()];
        let key = ArticleKey("https://example.com/a".into());
        let found = a.events_by_id_in(&key, &ids).unwrap();
        assert_eq!(found, a.events_by_id(&ids).unwrap());
        assert_eq!(found.len(), 4);
        assert_eq!(found[&other.id()], other);
        let missing = a.events_by_id_in(&key, &[comment("a").id(), comment("zzz").id()]);
        assert!(matches!(missing, Err(Error::NotFound(_))));
    }
}

/// A damaged article id set does not stop a thread's comments from being
/// read: the id index's runs give them.
#[test]
fn events_by_id_in_a_damaged_id_set_read_through_the_runs() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("arch");
    let mut a = Archive::open(&path, OpenMode::CreateIfMissing).unwrap();
    a.append_document(document(b"one", &["a", "b", "c"]), false).unwrap();
    a.flush().unwrap();
    let ids = [comment("a").id(), comment("b").id(), comment("c").id()];
    let before = a.events_by_id(&ids).unwrap();
    drop(a);
    let set = path.join("sets").join("ids.a.vlog");
    let mut bytes = std::fs::read(&set).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0x55;
    }
    std::fs::write(&set, bytes).unwrap();
    let a = Archive::open(&path, OpenMode::MustExist).unwrap();
    let key = ArticleKey("https://example.com/a".into());
    assert!(a.store().bucket(&crate::store::buckets::article_bucket(key.as_str()), &ids).is_err());
    assert_eq!(a.events_by_id_in(&key, &ids).unwrap(), before);
}

/// A run of comment merges asks for the articles of its comments together
/// (two captures' segments, one decode each): every comment's article in
/// the order asked, `None` for an id the log does not hold or holds as no
/// comment.
#[test]
fn articles_of_comments_in_the_order_asked() {
    for dir in [None, Some(TempDir::new().unwrap())] {
        let mut a = match &dir {
            None => Archive::in_memory(),
            Some(d) => Archive::open(&d.path().join("arch"), OpenMode::CreateIfMissing).unwrap(),
        };
        a.append_document(document(b"one", &["a", "b"]), false).unwrap();
        a.append_document(document(b"two", &["c"]), false).unwrap();
        a.flush().unwrap();
        let capture = a.entry(Seq(3)).unwrap().id;
        let missing = comment("never ingested").id();
        let ids = [comment("c").id(), missing, comment("a").id(), capture, comment("b").id()];
        let key = Some(ArticleKey("https://example.com/a".into()));
        assert_eq!(
            a.articles_of_comments(&ids).unwrap(),
            vec![key.clone(), None, key.clone(), None, key],
            "sled: {}",
            dir.is_some()
        );
        assert_eq!(a.articles_of_comments(&[]).unwrap(), Vec::new());
    }
}

/// Every (id, seq) of the id runs, sorted.
pub(crate) fn run_entries(a: &Archive) -> Vec<(EventId, Seq)> {
    let mut runs: Vec<(EventId, Seq)> = a
        .store()
        .scan_index()
        .map(|r| {
            let (id, seq) = r.unwrap();
            (id.unwrap(), seq.unwrap())
        })
        .collect();
    runs.sort();
    runs
}

/// Every entry of the id index and of the id sets, sorted.
fn index_entries(a: &Archive) -> [Vec<(EventId, Seq)>; 2] {
    let runs = run_entries(a);
    let mut sets: Vec<(EventId, Seq)> =
        a.store().scan_buckets().flat_map(|b| b.unwrap().1.unwrap()).collect();
    sets.sort();
    [runs, sets]
}

#[test]
fn a_huge_articles_id_set_is_split_and_still_finds_every_duplicate() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("a");
    let bodies: Vec<Vec<String>> =
        (0..3).map(|d| (0..4000).map(|i| format!("comment {d}-{i}")).collect()).collect();
    {
        let mut a = Archive::open(&root, OpenMode::CreateIfMissing).unwrap();
        for (d, b) in bodies.iter().enumerate() {
            let refs: Vec<&str> = b.iter().map(String::as_str).collect();
            let raw = format!("document {d}");
            let out = a.append_document(document(raw.as_bytes(), &refs), false).unwrap();
            assert_eq!(out.new.comments, 4000);
        }
        // Past the split: old comments are duplicates, new ones are not.
        let mut mixed: Vec<&str> =
            bodies[0][..10].iter().chain(&bodies[2][3990..]).map(String::as_str).collect();
        mixed.push("a new one");
        let out = a.append_document(document(b"mixed", &mixed), false).unwrap();
        assert_eq!((out.new.comments, out.duplicate.comments), (1, 20));
        a.flush().unwrap();
        assert_eq!(index_entries(&a)[0], index_entries(&a)[1], "runs and id sets hold the same entries");
        assert_eq!(index_entries(&a)[0].len() as u64, a.head().seq.0);
    }
    // The article's set is split into parts by the first byte of the ids.
    {
        // sled's threads may hold its file lock a moment after the archive
        // is dropped (seen on a loaded machine): retry for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let db = loop {
            match sled::Config::new().path(root.join("db")).open() {
                Ok(db) => break db,
                Err(e)
                    if std::time::Instant::now() < deadline
                        && e.to_string().contains("could not acquire lock") =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) => panic!("{e}"),
            }
        };
        let files = crate::store::vlog::ValueFiles::new(root.join("sets"));
        let sets =
            crate::store::vlog::SeparatedTree::new(db.open_tree("sets").unwrap(), files.get("ids").unwrap());
        let key = [&b"d"[..], &buckets::article_bucket("https://example.com/a")[..]].concat();
        assert_eq!(sets.get(&key).unwrap().unwrap(), vec![2u8]);
        let parts = sets.scan_prefix(b"e").collect::<Result<Vec<_>>>().unwrap();
        assert!(parts.len() > 200);
        assert!(db.open_tree("log").unwrap().scan_prefix(b"d").next().is_none(), "no set in the log tree");
    }
    // Verify is clean, and repair rebuilds the same index.
    let (a, _) = crate::views::tests::reopen(|| Archive::open_for_audit(&root));
    let quick = crate::audit::verify::VerifyOptions { quick: true, ..Default::default() };
    let report = crate::audit::verify::verify(&a, None, &quick, |_| {}).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let before = index_entries(&a);
    drop(a);
    let (a, _) = crate::views::tests::reopen(|| Archive::open_rebuilt(&root, false, None));
    assert_eq!(index_entries(&a), before);
}

#[test]
fn verify_names_a_comment_listed_under_another_article() {
    let mut a = Archive::in_memory();
    let other = Event::Comment(Comment::new(
        ArticleKey("https://example.com/b".into()),
        Some("x"),
        None,
        "elsewhere",
    ));
    let mut doc = document(b"one", &["here"]);
    let at = doc.events.len() - 1;
    if let Event::Capture(c) = &mut doc.events[at] {
        c.articles[0].comments.push(CaptureItem { id: other.id(), parent: None, possibly_truncated: false });
    }
    doc.events.insert(at, other);
    a.append_document(doc, false).unwrap();
    let report = crate::audit::verify::verify(&a, None, &Default::default(), |_| {}).unwrap();
    assert!(
        report.findings.iter().any(|f| f.check == "reference" && f.message.contains("does not belong")),
        "{:?}",
        report.findings
    );
}

/// A capture naming an event that is not in the log, as an item or as an
/// item's parent, is named once for each (items are looked up once for the
/// reference and section checks together, parents on their own).
#[test]
fn verify_names_references_to_events_not_in_the_log() {
    let mut a = Archive::in_memory();
    let absent = |n: u8| crate::model::EventId([n; 32]);
    let mut doc = document(b"one", &["here", "there"]);
    let at = doc.events.len() - 1;
    if let Event::Capture(c) = &mut doc.events[at] {
        c.articles[0].comments[1].parent = Some(absent(7));
        c.articles[0].comments.push(CaptureItem { id: absent(9), parent: None, possibly_truncated: false });
    }
    a.append_document(doc, false).unwrap();
    let report = crate::audit::verify::verify(&a, None, &Default::default(), |_| {}).unwrap();
    let named: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.check == "reference" && f.message.contains("not earlier in the log"))
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(named.len(), 2, "{:?}", report.findings);
    assert!(
        named[0].contains(&absent(7).to_string()) && named[1].contains(&absent(9).to_string()),
        "{named:?}"
    );
}

#[test]
fn many_entries_are_read_on_two_threads_alike() {
    let tmp = TempDir::new().unwrap();
    let mut a = Archive::open(&tmp.path().join("a"), OpenMode::CreateIfMissing).unwrap();
    for d in 0..3 {
        let bodies: Vec<String> = (0..2000).map(|i| format!("body {d}-{i}")).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        a.append_document(document(format!("doc {d}").as_bytes(), &refs), false).unwrap();
    }
    let seqs: Vec<Seq> = (1..=a.head().seq.0).rev().map(Seq).collect();
    assert!(seqs.len() >= 4096, "the two-thread path");
    let read = a.entries_at_with(&seqs, |e| Ok(e.id)).unwrap();
    assert_eq!(read.len(), seqs.len());
    for e in a.entries_from(Seq(1)).unwrap() {
        let e = e.unwrap();
        assert_eq!(read[&e.seq], e.id);
    }
    assert!(a.entries_at_with(&[Seq(a.head().seq.0 + 1)], |e| Ok(e.id)).is_err());
    // Of several failing seqs, on either thread, the error is the first
    // one's in seq order, as one thread would meet it.
    for failing in [[100u64, 5000], [5000, 5001], [3000, 6001]] {
        let err = a
            .entries_at_with(&seqs, |e| {
                if failing.contains(&e.seq.0) {
                    Err(crate::error::Error::Corrupt(format!("at {}", e.seq)))
                } else {
                    Ok(e.id)
                }
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("at {}", failing[0])), "{failing:?}: {err}");
    }
}

#[test]
fn entries_read_lazily_from_segments_equal_the_log() {
    let tmp = TempDir::new().unwrap();
    let mut a = Archive::open(&tmp.path().join("a"), OpenMode::CreateIfMissing).unwrap();
    for d in 0..6 {
        let bodies: Vec<String> = (0..(3 + d * 7)).map(|i| format!("body {d}-{i}")).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        a.append_document(document(format!("doc {d}").as_bytes(), &refs), false).unwrap();
    }
    let log: Vec<LogEntry> = a.entries_from(Seq(1)).unwrap().map(|e| e.unwrap()).collect();
    let head = a.head().seq.0;
    // Every single entry, and subsets of every stride and offset: within a
    // segment, across segments, a segment's first and last (its capture).
    for e in &log {
        assert_eq!(a.entry(e.seq).unwrap(), *e);
    }
    for stride in 1..=9u64 {
        for offset in 0..stride {
            let seqs: Vec<Seq> = (1..=head).filter(|s| s % stride == offset).map(Seq).collect();
            let read = a.entries_at_with(&seqs, |e| Ok(e.clone())).unwrap();
            assert_eq!(read.len(), seqs.len());
            for s in &seqs {
                assert_eq!(read[s], log[(s.0 - 1) as usize], "stride {stride} offset {offset} seq {s}");
            }
        }
    }
    assert!(matches!(a.entry(Seq(head + 1)), Err(Error::MissingEntry(_))));
    assert!(a.entries_at_with(&[Seq(2), Seq(head + 1)], |e| Ok(e.seq)).is_err());
}

/// verify's fresh replay of the views takes its entries from verify's own
/// pass over the log: on a damaged segment it fails just as a replay that
/// reads the log does, with the same findings.
#[test]
fn verify_feeds_its_fresh_replay_what_a_read_of_the_log_gives() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("arch");
    let mut a = six_pages(&path);
    let views = crate::views::builtin();
    crate::views::catch_up(&a, &views).unwrap();
    a.flush().unwrap();
    let view_findings = |a: &Archive| -> Vec<String> {
        let report = crate::audit::verify::verify(a, None, &Default::default(), |_| {}).unwrap();
        report.findings.iter().filter(|f| f.check == "view").map(|f| f.message.clone()).collect()
    };
    let unfed = |a: &Archive| -> Vec<String> {
        crate::views::audit(a, &views)
            .unwrap()
            .into_iter()
            .map(|p| format!("view {}: {}", p.view, p.message))
            .collect()
    };
    assert_eq!(view_findings(&a), Vec::<String>::new());
    drop(a);
    // A byte of the third record (a segment) of the log file altered.
    let log = path.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&log).unwrap();
    let mut at = 0usize;
    for _ in 0..2 {
        let len = u32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 12 + len;
    }
    let len = u32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    bytes[at + 12 + len / 2] ^= 0x40;
    std::fs::write(&log, bytes).unwrap();
    let a = Archive::open(&path, OpenMode::MustExist).unwrap();
    let fed = view_findings(&a);
    assert!(!fed.is_empty() && fed.iter().all(|m| m.contains("a fresh replay fails")), "{fed:?}");
    assert_eq!(fed, unfed(&a));
}

/// The same bytes ingested again by the same open archive, after the commit
/// that recorded them: recognized by their parse record (the blob record
/// the appending thread read before that commit is not trusted after it),
/// and the blob keeps one parse record.
#[test]
fn a_document_committed_is_recognized_by_the_same_open_archive() {
    use crate::ingest::{ingest_bytes, IngestOptions, IngestReport};
    let dir = TempDir::new().unwrap();
    let mut a = Archive::open(&dir.path().join("arch"), OpenMode::CreateIfMissing).unwrap();
    let doc = "{\"type\":\"article\",\"url\":\"https://example.com/r\",\"title\":\"T\"}\n\
               {\"type\":\"comment\",\"author\":\"a\",\"body\":\"hello\"}\n";
    let options = IngestOptions::default();
    let mut first = IngestReport::default();
    ingest_bytes(&mut a, "d.jsonl", doc.as_bytes(), &options, &mut first).unwrap();
    assert_eq!(first.new.comments, 1);
    let mut again = IngestReport::default();
    ingest_bytes(&mut a, "d.jsonl", doc.as_bytes(), &options, &mut again).unwrap();
    assert_eq!((again.new.total(), again.duplicate.comments), (0, 1));
    let records: Vec<_> = a.store().scan_parsed().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 1, "{records:?}");
}

/// The same bytes fetched again and again (each with its own fetch time):
/// the blob's record keeps its first parse records and the rest have keys
/// of their own, so that each costs the same; every one is found, after a
/// commit, after a reopen and after `repair`.
#[test]
fn many_parses_of_one_blob_are_each_found() {
    use crate::ingest::{ingest_bytes, IngestOptions, IngestReport};
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("arch");
    let doc = "{\"type\":\"article\",\"url\":\"https://example.com/f\",\"title\":\"T\"}\n\
               {\"type\":\"comment\",\"author\":\"a\",\"body\":\"hello\"}\n";
    let fetches = 3 * sled_store::BLOB_PARSES;
    let options = |i: usize| IngestOptions {
        fetched_at: crate::model::Timestamp::parse_lenient(&format!("2012-04-01T{:02}:00:00Z", i), None),
        ..IngestOptions::default()
    };
    {
        let mut a = Archive::open(&path, OpenMode::CreateIfMissing).unwrap();
        for i in 0..fetches {
            let mut report = IngestReport::default();
            ingest_bytes(&mut a, "f.jsonl", doc.as_bytes(), &options(i), &mut report).unwrap();
            assert_eq!(report.new.captures, 1, "fetch {i}");
        }
    }
    let each_found = |a: &Archive| {
        let mut found = 0;
        for e in a.entries_from(Seq(1)).unwrap() {
            let e = e.unwrap();
            if let Event::Capture(c) = &e.event {
                let p = a.store().parsed(&c.blob, &parse_key_of(c)).unwrap().expect("parse record");
                assert_eq!(p.capture, e.id);
                found += 1;
            }
        }
        assert_eq!(found, fetches);
        assert_eq!(a.store().scan_parsed().count(), fetches);
    };
    let a = reopen(&path);
    each_found(&a);
    // Every one of them again: recognized, nothing new.
    drop(a);
    let mut a = reopen(&path);
    for i in 0..fetches {
        let mut report = IngestReport::default();
        ingest_bytes(&mut a, "f.jsonl", doc.as_bytes(), &options(i), &mut report).unwrap();
        assert_eq!(report.new.total(), 0, "fetch {i}");
    }
    each_found(&a);
    drop(a);
    let (a, _) = Archive::open_rebuilt(&path, false, None).unwrap();
    each_found(&a);
}
