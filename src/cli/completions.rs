//! `cairn completions` and `cairn man`: shell completion scripts
//! (clap_complete) and roff manual pages (clap_mangen), both made from the
//! same definition as `--help`.

use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::PathBuf;

/// Print a completion script for SHELL. Bash: `source <(cairn completions
/// bash)` (or save it under `~/.local/share/bash-completion/completions/cairn`);
/// zsh: save it as `_cairn` on your `$fpath`; fish: save it as
/// `~/.config/fish/completions/cairn.fish`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Write the manual pages: `cairn.1` and one page per command
/// (`cairn-ingest.1`, ...) into DIR, or `cairn.1` alone to standard output.
/// Read one with `man -l DIR/cairn-ingest.1`.
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// The directory to write every page into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `cairn completions`.
pub fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> Result<Status> {
    let mut cmd = Cli::command();
    cmd.set_bin_name("cairn");
    cmd.build();
    // `generate` panics on a write error; a closed pipe is an error here.
    clap_complete::Generator::try_generate(&args.shell, &cmd, out).map_err(stdout_error)?;
    out.flush().map_err(stdout_error)?;
    Ok(Status::Ok)
}

/// Runs `cairn man`.
pub fn man(args: &ManArgs, out: &mut dyn Write) -> Result<Status> {
    // Built, so every page lists the global options too.
    let mut cmd = Cli::command();
    cmd.build();
    let Some(dir) = &args.out else {
        clap_mangen::Man::new(cmd).render(out).map_err(stdout_error)?;
        return Ok(Status::Ok);
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = 0;
    // Each page named as man expects (`cairn-key-generate`), its synopsis
    // as typed (`cairn key generate`).
    let named =
        |c: &clap::Command, words: &[&str]| c.clone().display_name(words.join("-")).bin_name(words.join(" "));
    let mut pages = vec![("cairn".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        pages.push((format!("cairn-{}", sub.get_name()), named(sub, &["cairn", sub.get_name()])));
        for subsub in sub.get_subcommands() {
            let words = ["cairn", sub.get_name(), subsub.get_name()];
            pages.push((words.join("-"), named(subsub, &words)));
        }
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page)
            .title(name.clone())
            .render(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        written += 1;
    }
    writeln!(out, "wrote {written} manual pages to {}", dir.display()).map_err(stdout_error)?;
    Ok(Status::Ok)
}
