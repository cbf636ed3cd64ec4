//! `cairn key`: make the Ed25519 keys that sign checkpoints, in Go's note
//! key format.

use crate::cli::{stdout_error, Cli, Status};
use crate::error::{Error, Result};
use crate::transparency::note::Signer;
use std::io::Write;
use std::path::PathBuf;

/// Make and read the keys that sign checkpoints (docs/transparency.md).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// `cairn key` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    /// Write a new signer key (`PRIVATE+KEY+NAME+HASH+KEY`, mode 0600) to
    /// --out and print its verifier key (`NAME+HASH+KEY`) on stdout. Keep
    /// the signer key secret; publish the verifier key.
    Generate {
        /// The key's name (no spaces, '+' or control characters), e.g. `archive.example.org/news`;
        /// checkpoints signed with it use it as their origin by default.
        name: String,
        /// The file to write; it must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the verifier key of a signer key file.
    Verifier {
        /// The signer key file.
        file: PathBuf,
    },
}

/// Runs `cairn key`.
pub fn run(_cli: &Cli, args: &Args, out: &mut dyn Write) -> Result<Status> {
    match &args.command {
        KeyCommand::Generate { name, out: path } => {
            let signer = Signer::generate(name).map_err(Error::Usage)?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut file = opts.open(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    Error::Usage(format!("{} exists: cairn never overwrites a key", path.display()))
                }
                _ => Error::io(path, e),
            })?;
            file.write_all(format!("{}\n", signer.text()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(path, e))?;
            writeln!(out, "{}", signer.verifier().text()).map_err(stdout_error)?;
        }
        KeyCommand::Verifier { file } => {
            let signer = crate::cli::checkpoint::read_signer(file)?;
            writeln!(out, "{}", signer.verifier().text()).map_err(stdout_error)?;
        }
    }
    Ok(Status::Ok)
}
