//! The floors' command line: the load shape (as the harness passes it) and,
//! for the processes a floor starts, which part they play.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
pub struct Opts {
    /// Requests in flight, comma-separated; each level is measured in turn
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub inflight: Vec<usize>,
    /// Seconds of each measurement
    #[arg(long, default_value_t = 1.0)]
    pub secs: f64,
    /// Seconds of warm-up before each level's measurements
    #[arg(long, default_value_t = 0.3)]
    pub warmup: f64,
    /// Measurements per level (one `RESULT` line each)
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// One-thread runtimes in every process of the floor (as the harness
    /// runs everything when pinned to one CPU)
    #[arg(long)]
    pub current_thread: bool,
    /// Internal: the part this process plays, when a floor started it
    #[arg(long, hide = true)]
    pub role: Option<String>,
    /// Internal: where the part listens (a Unix socket path)
    #[arg(long, hide = true)]
    pub listen: Option<PathBuf>,
    /// Internal: what the part connects to
    #[arg(long, hide = true)]
    pub connect: Option<String>,
}

impl Opts {
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        if self.current_thread {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
        }
    }

    /// The arguments a child started by this floor gets: its part, and the
    /// runtime flavour of the whole floor.
    pub fn child_args(&self, role: &str) -> Vec<String> {
        let mut args = vec!["--role".to_owned(), role.to_owned()];
        if self.current_thread {
            args.push("--current-thread".to_owned());
        }
        args
    }

    pub fn listen(&self) -> anyhow::Result<&PathBuf> {
        self.listen
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("--listen is required for this role"))
    }

    pub fn connect(&self) -> anyhow::Result<&str> {
        self.connect
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("--connect is required for this role"))
    }
}
