//! The README's `receiver.env` example, copied as written (comments and all), starts the receiver
//! and delivers as the account it names: nothing of a `# comment` reaches SALESmanago.

mod support;

use fake_salesmanago::{Account, Options};
use serde_json::{json, Value as J};
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The text between `cat > receiver.env <<'ENV'` and `ENV` in the README, exactly.
fn readme_example() -> String {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("cat > receiver.env <<'ENV'\n")
        .expect("the README shows a receiver.env")
        + "cat > receiver.env <<'ENV'\n".len();
    let len = readme[start..].find("\nENV\n").expect("the heredoc ends");
    format!("{}\n", &readme[start..start + len])
}

#[tokio::test]
async fn the_readmes_env_file_starts_the_receiver_and_sends_a_clean_owner() {
    let text = readme_example();
    assert!(
        text.contains("# "),
        "the example keeps its comments: {text}"
    );
    let pairs = salla_salesmanago_receiver::config::Config::parse_env_file(&text).unwrap();
    let value = |k: &str| pairs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    // The fake is the account the example names, so it refuses any value with a comment in it.
    let sm = fake_salesmanago::Fake::start_with(Options {
        account: Account {
            client_id: value("SM_CLIENT_ID"),
            api_key: value("SM_API_KEY"),
            api_secret: value("SM_API_SECRET"),
            owner: value("SM_OWNER"),
        },
        ..Options::default()
    })
    .await
    .unwrap();
    assert_eq!(value("SM_OWNER"), "you@your-shop.example");
    let origin = value("SM_ALLOWED_ORIGINS");
    assert_eq!(origin, "https://your-shop.example");

    let dir = data_dir("env-file");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("receiver.env");
    std::fs::write(&file, &text).unwrap();
    // Only what must differ on a test machine is overridden (the environment wins over the file):
    // where SALESmanago is, where to listen, where the database goes.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sm-receiver"));
    for (name, _) in salla_salesmanago_receiver::config::VARIABLES {
        cmd.env_remove(name);
    }
    let mut child = cmd
        .arg("--env-file")
        .arg(&file)
        .env("SM_API_ENDPOINT", &sm.url)
        .env("SM_LISTEN", "127.0.0.1:0")
        .env("SM_DATA_DIR", dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let log: J = serde_json::from_str(&line).unwrap_or(J::Null);
            if log["fields"]["message"] == "receiver listening" {
                return log["fields"]["addr"].as_str().unwrap().to_owned();
            }
        }
        panic!("the receiver exited before it listened");
    })
    .await
    .expect("the receiver starts from the README's env file");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = format!("http://{addr}");
    wait_healthy(&url).await;

    let mut body = batch(
        vec![event("readme", "VISIT", None, "1")],
        json!({ "contactId": "c-1" }),
    );
    body["clientId"] = json!(value("SM_CLIENT_ID"));
    let (status, answer) = post_raw(&url, body.to_string(), Some(&origin)).await;
    assert_eq!(status, 200, "{answer}");
    let taken = sm.wait_for_taken(1, Duration::from_secs(10)).await;
    assert_eq!(taken[0].body["owner"], "you@your-shop.example");
    assert!(sm.refused().is_empty(), "{:?}", sm.refused());
    child.start_kill().unwrap();
}
