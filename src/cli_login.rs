//! `roster login` and `roster token`: the command line logs a person in
//! through the device flow (RFC 8628) against a running Roster, keeps the
//! tokens in a file only its user can read, and prints a fresh access token
//! for later commands (`curl -H "Authorization: Bearer $(roster token)"`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The tokens `roster login` keeps.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    issuer: String,
    access_token: String,
    refresh_token: Option<String>,
    /// Unix seconds.
    expires_at: i64,
}

/// Where the tokens live: `$ROSTER_TOKEN_FILE`, else
/// `$XDG_CONFIG_HOME/roster/token.json`, else `~/.config/roster/token.json`.
pub fn token_file() -> Result<PathBuf, String> {
    if let Some(f) = std::env::var_os("ROSTER_TOKEN_FILE") {
        return Ok(PathBuf::from(f));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set: set ROSTER_TOKEN_FILE")?).join(".config")
        }
    };
    Ok(base.join("roster").join("token.json"))
}

fn save(stored: &Stored) -> Result<PathBuf, String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = token_file()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(stored).map_err(|e| e.to_string())?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(&body)
        .and_then(|()| f.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

async fn form(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Result<(u16, serde_json::Value), String> {
    let resp = http
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    Ok((status, body))
}

fn stored_from(issuer: &str, body: &serde_json::Value) -> Result<Stored, String> {
    let access = body["access_token"].as_str().ok_or("no access_token in the answer")?;
    Ok(Stored {
        issuer: issuer.to_string(),
        access_token: access.to_string(),
        refresh_token: body["refresh_token"].as_str().map(str::to_string),
        expires_at: now() + body["expires_in"].as_i64().unwrap_or(0),
    })
}

/// `roster login`: start a device login at `issuer`, show the person where
/// to approve it, poll until they do, and keep the tokens.
pub async fn login(issuer: &str, client_id: &str, scope: &str) -> Result<(), String> {
    let issuer = issuer.trim_end_matches('/');
    let http = client()?;
    let (status, started) = form(
        &http,
        &format!("{issuer}/oauth/device_authorization"),
        &[("client_id", client_id), ("scope", scope)],
    )
    .await?;
    if status != 200 {
        return Err(format!("the device login could not start: {started}"));
    }
    let field = |k: &str| {
        started[k]
            .as_str()
            .map(str::to_string)
            .ok_or(format!("no {k} in the answer"))
    };
    let (device_code, user_code) = (field("device_code")?, field("user_code")?);
    eprintln!(
        "To log in, open {} and enter the code {user_code}\n(or open {})",
        field("verification_uri")?,
        field("verification_uri_complete")?
    );
    let mut interval = started["interval"].as_u64().unwrap_or(5).max(1);
    let deadline = now() + started["expires_in"].as_i64().unwrap_or(600);
    while now() < deadline {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let (status, body) = form(
            &http,
            &format!("{issuer}/oauth/token"),
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", client_id),
                ("device_code", &device_code),
            ],
        )
        .await?;
        if status == 200 {
            let stored = stored_from(issuer, &body)?;
            let path = save(&stored)?;
            eprintln!("Logged in; the token is kept in {}", path.display());
            return Ok(());
        }
        match body["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            Some("temporarily_unavailable") => {}
            _ => return Err(format!("the login did not complete: {body}")),
        }
    }
    Err("the code expired before it was approved: run roster login again".into())
}

/// `roster token`: the kept access token, refreshed first when it has less
/// than a minute left.
pub async fn token(client_id: &str) -> Result<String, String> {
    let path = token_file()?;
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e} (run roster login first)", path.display()))?;
    let stored: Stored = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if stored.expires_at - now() > 60 {
        return Ok(stored.access_token);
    }
    let refresh = stored
        .refresh_token
        .as_deref()
        .ok_or("the token expired and cannot be refreshed: run roster login")?;
    let (status, body) = form(
        &client()?,
        &format!("{}/oauth/token", stored.issuer),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh),
        ],
    )
    .await?;
    if status != 200 {
        return Err(format!("the token could not be refreshed ({body}): run roster login"));
    }
    let fresh = stored_from(&stored.issuer, &body)?;
    save(&fresh)?;
    Ok(fresh.access_token)
}
