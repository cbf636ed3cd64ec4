//! The selection options `table` and `search` share: one article, one
//! author, a window of observation time.

use crate::error::Result;
use crate::store::Archive;
use crate::tables::{Filter, Window};

/// `--article`, `--author`, `--since`, `--until`.
#[derive(clap::Args, Debug)]
pub struct Selection {
    /// Only this article (a URL, key, id prefix or title words, as `thread`
    /// takes).
    #[arg(long, value_name = "ARTICLE")]
    pub article: Option<String>,

    /// Only comments by this author, exactly as shown.
    #[arg(long, value_name = "NAME")]
    pub author: Option<String>,

    /// Only what was observed (fetched, else recorded) at or after TIME
    /// (RFC 3339 with offset, or a date).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only what was observed at or before TIME (a date includes that day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

impl Selection {
    /// Checks the times (before the archive is opened, so a typo costs
    /// nothing).
    pub fn times(&self) -> Result<Window> {
        Window::parse(self.since.as_deref(), self.until.as_deref())
    }

    /// Everything, the article looked up in `archive`'s views.
    pub fn parse(&self, archive: &Archive) -> Result<Filter> {
        let window = self.times()?;
        let article = self
            .article
            .as_deref()
            .map(|a| crate::views::threads::resolve_article(archive, a))
            .transpose()?;
        Ok(Filter { article, author: self.author.clone(), window, pinned: None })
    }
}
