//! `sm-receiver [--env-file FILE]`: the receiver as a service. Configuration comes from the
//! environment, or from an env file (the environment wins). Stops gracefully on SIGINT/SIGTERM.

use salla_salesmanago_receiver::config::{Config, VARIABLES};
use std::collections::HashMap;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut file_vars = HashMap::new();
    if let Some(i) = args.iter().position(|a| a == "--env-file") {
        let Some(path) = args.get(i + 1) else {
            eprintln!("--env-file needs a path");
            return ExitCode::from(2);
        };
        match std::fs::read_to_string(path) {
            Ok(text) => match Config::parse_env_file(&text) {
                Ok(vars) => file_vars.extend(vars),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    return ExitCode::from(2);
                }
            },
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let config = match Config::from_lookup(|k| {
        std::env::var(k).ok().or_else(|| file_vars.get(k).cloned())
    }) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("configuration: {e}");
            }
            eprintln!("\nvariables:");
            for (name, what) in VARIABLES {
                eprintln!("  {name:20} {what}");
            }
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SM_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
    // Listening for SIGTERM before starting: one that arrives while the receiver starts must
    // stop it gracefully too, not by the default action of exiting on the spot.
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let running = match salla_salesmanago_receiver::start(config).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::from(1);
        }
    };
    let terminated = async {
        #[cfg(unix)]
        if let Some(s) = terminate.as_mut() {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
    tracing::info!("stopping: finishing work in flight");
    running.stop().await;
    ExitCode::SUCCESS
}
