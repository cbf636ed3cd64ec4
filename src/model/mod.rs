//! The data model: typed ids, timestamps, identity normalization, the
//! canonical encoding that ids are hashed over, and the events themselves.

pub mod canonical;
pub mod event;
pub mod ids;
pub mod normalize;
pub mod time;

pub use event::{
    chain_step, Article, Capture, CaptureItem, CapturedArticle, Comment, Event, EventKind, Gap, LogEntry,
    Merge, MergeKind,
};
pub use ids::{ArticleKey, BlobId, ChainHash, EventId, HexPrefix, IdMap, IdSet, Seq};
pub use time::Timestamp;
