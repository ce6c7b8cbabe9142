use std::process::ExitCode;

use clap::Parser;
use isms::config::Cli;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match isms::fronts::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isms: {e:#}");
            ExitCode::FAILURE
        }
    }
}
