//! The README's `receiver.env` example, copied as written (comments and all), starts the receiver
//! and delivers as the account it names: nothing of a `# comment` reaches SALESmanago.

mod support;

use fake_salesmanago::{Account, Options};
use salla_salesmanago_receiver::webhook::auth::sign;
use serde_json::{json, Value as J};
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The text between `cat > <file> <<'ENV'` and `ENV` in the README, exactly as a reader copies
/// it (a block inside a list item is indented in the README's text, not when shown).
fn readme_example(file: &str) -> String {
    let readme = include_str!("../../README.md");
    let open = format!("cat > {file} <<'ENV'");
    let mut lines = readme.lines().skip_while(|l| l.trim_start() != open);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("the README shows a {file}"));
    let indent = &first[..first.len() - first.trim_start().len()];
    let mut text = String::new();
    for line in lines {
        let line = line.strip_prefix(indent).unwrap_or(line);
        if line == "ENV" {
            return text;
        }
        text.push_str(line);
        text.push('\n');
    }
    panic!("the {file} heredoc never ends");
}

/// The README's Cloud Mode file as a reader makes it: the heredoc, then the README's line that adds
/// `SM_SECRET_KEY` (`echo "SM_SECRET_KEY=$(openssl rand -base64 32)" >> receiver-app.env`) run
/// with `sh` in a fresh directory. Where `openssl` is missing, its output is made here instead.
fn readme_cloud_file() -> String {
    let heredoc = readme_example("receiver-app.env");
    let readme = include_str!("../../README.md");
    let line = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("echo \"SM_SECRET_KEY=") && l.ends_with(">> receiver-app.env"))
        .expect("the README adds SM_SECRET_KEY to receiver-app.env");
    let dir = data_dir("env-file-cloud-key");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("receiver-app.env");
    std::fs::write(&file, &heredoc).unwrap();
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if openssl {
        let status = std::process::Command::new("sh")
            .args(["-c", line])
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "{line}");
    } else {
        use base64::Engine;
        let mut bytes = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").unwrap(),
            &mut bytes,
        )
        .unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut text = heredoc;
        text.push_str(&format!("SM_SECRET_KEY={key}\n"));
        std::fs::write(&file, text).unwrap();
    }
    std::fs::read_to_string(&file).unwrap()
}

/// Starts sm-receiver with `--env-file` holding `text`, with only what must differ on a test
/// machine overridden (the environment wins over the file): where to listen, where the database
/// goes, and `more`. Answers the running child and its URL once it is healthy.
async fn start_from(
    name: &str,
    text: &str,
    more: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let dir = data_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("receiver.env");
    std::fs::write(&file, text).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sm-receiver"));
    for (name, _) in salla_salesmanago_receiver::config::VARIABLES {
        cmd.env_remove(name);
    }
    cmd.arg("--env-file")
        .arg(&file)
        .envs(more.iter().copied())
        .env("SM_LISTEN", "127.0.0.1:0")
        .env("SM_DATA_DIR", dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
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
    (child, url)
}

#[tokio::test]
async fn the_readmes_env_file_starts_the_receiver_and_sends_a_clean_owner() {
    let text = readme_example("receiver.env");
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

    // Where SALESmanago is must differ on a test machine too.
    let (mut child, url) = start_from("env-file", &text, &[("SM_API_ENDPOINT", &sm.url)]).await;
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

/// The README's Cloud Mode file (the Salla app vendor's receiver): no account of its own, the
/// app's webhook secret and a key made by `openssl`; a store's settings then make its tenant,
/// and any store's origin posts.
#[tokio::test]
async fn the_readmes_cloud_mode_env_file_serves_a_store_from_its_settings_webhook() {
    let text = readme_cloud_file();
    let pairs = salla_salesmanago_receiver::config::Config::parse_env_file(&text).unwrap();
    let value = |k: &str| pairs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert!(
        pairs
            .iter()
            .all(|(k, _)| !k.starts_with("SM_API") && k != "SM_CLIENT_ID"),
        "no account of its own: {pairs:?}"
    );
    let secret = value("SM_SALLA_WEBHOOK_SECRET");
    assert_eq!(secret, "the-apps-webhook-secret");
    assert_eq!(value("SM_SALLA_WEBHOOK_AUTH"), "signature");
    assert_eq!(value("SM_ALLOWED_ORIGINS"), "*");
    // `openssl rand -base64 32` makes a key the receiver takes.
    salla_salesmanago_receiver::sealed::SealingKey::parse(&value("SM_SECRET_KEY")).unwrap();

    let sm = Fake::start().await;
    let (mut child, url) = start_from("env-file-cloud", &text, &[]).await;
    let client = reqwest::Client::new();
    let hook = |body: &J, signature: String| {
        client
            .post(format!("{url}/salla/webhook"))
            .header("Content-Type", "application/json")
            .header("X-Salla-Signature", signature)
            .body(body.to_string())
            .send()
    };
    let settings = json!({
        "event": "app.settings.updated", "merchant": 1305, "created_at": "…",
        "data": { "settings": {
            "client_id": CLIENT_ID, "api_key": API_KEY, "api_secret": API_SECRET, "owner": OWNER,
            "api_endpoint": sm.url, "endpoint": "https://collect.example.com/collect"
        } }
    });
    let forged = hook(
        &settings,
        sign("another secret", settings.to_string().as_bytes()),
    );
    assert_eq!(forged.await.unwrap().status(), 401);
    let signed = hook(&settings, sign(&secret, settings.to_string().as_bytes()));
    assert_eq!(signed.await.unwrap().status(), 200);

    let mut body = batch(
        vec![event("cloud", "VISIT", None, "1")],
        json!({ "contactId": "c-1" }),
    );
    body["clientId"] = json!(CLIENT_ID);
    body["storeId"] = json!("1305");
    let (status, answer) =
        post_raw(&url, body.to_string(), Some("https://any-store.example")).await;
    assert_eq!(status, 200, "{answer}");
    let taken = sm.wait_for_taken(1, Duration::from_secs(10)).await;
    assert_eq!(taken[0].body["owner"], OWNER);
    child.start_kill().unwrap();
}
