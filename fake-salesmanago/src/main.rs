//! `sm-fake [--listen ADDR]`: the fake SALESmanago API as a process, for the end-to-end suite and
//! the demo. When it is ready it prints exactly one line on stdout,
//! `sm-fake listening on http://127.0.0.1:PORT`; everything else goes to stderr.
//!
//! The account defaults to the demo account; `SM_FAKE_CLIENT_ID`, `SM_FAKE_API_KEY`,
//! `SM_FAKE_API_SECRET` and `SM_FAKE_OWNER` change it, `SM_FAKE_DELAY_MS` holds every answer
//! back, `SM_FAKE_EVENTS_NEED_CONTACT=false` takes events for emails never upserted (see the
//! library's doc for the routes).

use fake_salesmanago::{Account, Fake, Options};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: sm-fake [--listen 127.0.0.1:0]
  env: SM_FAKE_CLIENT_ID, SM_FAKE_API_KEY, SM_FAKE_API_SECRET, SM_FAKE_OWNER (default: the demo account),
       SM_FAKE_DELAY_MS (hold every answer back, default 0),
       SM_FAKE_EVENTS_NEED_CONTACT (false: take events for emails never upserted; default true)";

fn options() -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let addr = args.next().ok_or("--listen needs an address")?;
                options.listen = addr
                    .parse()
                    .map_err(|e| format!("--listen {addr}: {e} (e.g. 127.0.0.1:0)"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let env = |name: &str, default: String| std::env::var(name).unwrap_or(default);
    let demo = Account::default();
    options.account = Account {
        client_id: env("SM_FAKE_CLIENT_ID", demo.client_id),
        api_key: env("SM_FAKE_API_KEY", demo.api_key),
        api_secret: env("SM_FAKE_API_SECRET", demo.api_secret),
        owner: env("SM_FAKE_OWNER", demo.owner),
    };
    if let Ok(ms) = std::env::var("SM_FAKE_DELAY_MS") {
        let ms: u64 = ms
            .parse()
            .map_err(|_| format!("SM_FAKE_DELAY_MS={ms}: must be milliseconds"))?;
        options.answer_delay = Duration::from_millis(ms);
    }
    match std::env::var("SM_FAKE_EVENTS_NEED_CONTACT").as_deref() {
        Err(_) | Ok("true" | "1") => {}
        Ok("false" | "0") => options.events_need_contact = false,
        Ok(v) => {
            return Err(format!(
                "SM_FAKE_EVENTS_NEED_CONTACT={v}: must be true or false"
            ))
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("sm-fake: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listen = options.listen;
    let fake = match Fake::start_with(options).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sm-fake: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    // Whoever started us reads this line to learn the port: print it only once we listen.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "sm-fake listening on {}", fake.url);
    let _ = out.flush();
    drop(out);
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
