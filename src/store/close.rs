//! Closing a store without sled's panic. sled 0.34.7 syncs its log file
//! when its last handle is dropped and unwraps the result
//! (`pagecache/logger.rs`, line 467, `impl Drop for Log`): an fsync that
//! fails there (EIO) would end the process with a panic. An [`Archive`]
//! drops its store through `close` (crate-private), which catches that panic and notes
//! it ([`close_failure`]) for the binary to report as an error, once
//! [`guard_close`] has installed the panic hook that recognizes it (and
//! keeps its text off stderr). Any other panic is passed on as it was.
//!
//! [`Archive`]: super::Archive

use super::Store;
use std::cell::Cell;
use std::sync::Mutex;

thread_local! {
    /// This thread is dropping a store in [`close`].
    static CLOSING: Cell<bool> = const { Cell::new(false) };
    /// The hook noted sled's close failure on this thread.
    static NOTED: Cell<bool> = const { Cell::new(false) };
}

/// What sled said when its file could not be synced as it closed.
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Drops `store`, catching sled's panic when its file cannot be synced as
/// it closes (noted by the hook [`guard_close`] installs); any other panic
/// goes on.
pub(crate) fn close(store: Box<dyn Store>) {
    let was = CLOSING.with(|c| c.replace(true));
    let noted_before = NOTED.with(|n| n.replace(false));
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(store)));
    CLOSING.with(|c| c.set(was));
    let noted = NOTED.with(|n| n.replace(noted_before));
    if let Err(panic) = dropped {
        if !noted {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Installs a panic hook that notes sled's close failure (while a store
/// is being closed, at that line of sled's log, an unwrapped I/O error)
/// instead of printing it; every other panic is reported as before.
pub fn guard_close() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !note(info) {
            default(info);
        }
    }));
}

fn note(info: &std::panic::PanicHookInfo<'_>) -> bool {
    if !CLOSING.with(Cell::get) {
        return false;
    }
    let in_sled_log = info.location().is_some_and(|l| {
        l.file().contains("sled-0.34.7") && l.file().ends_with("logger.rs") && l.line() == 467
    });
    let payload = info.payload();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    if !in_sled_log || !text.starts_with("called `Result::unwrap()` on an `Err` value") {
        return false;
    }
    // `Os { code: 5, kind: …, message: "Input/output error" }`: the message.
    let why = text.split("message: \"").nth(1).and_then(|m| m.split('"').next()).unwrap_or(&text).to_string();
    if let Ok(mut slot) = FAILURE.lock() {
        slot.get_or_insert(why);
    }
    NOTED.with(|n| n.set(true));
    true
}

/// What sled said, when a store closed by this process could not sync its
/// file.
pub fn close_failure() -> Option<String> {
    FAILURE.lock().ok().and_then(|s| s.clone())
}
