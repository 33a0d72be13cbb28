//! Benchmark: the cost of `Verifier::verify` per request, without and with
//! the revocation feed followed. It starts its own Roster (`$ROSTER_BIN`,
//! default `roster` on the PATH) on a scratch SQLite database, and prints
//! microseconds per verification. Run in release mode:
//!
//! ```sh
//! cargo build --release && ROSTER_BIN=target/release/roster \
//!     cargo run --release -p roster-client --example verify_bench -- 200000
//! ```

use std::process::{Command, Stdio};
use std::time::Instant;

use roster_client::{Clock, RevocationPolicy, SecretString, TokenRequest, TokenSource, Verifier, VerifierConfig};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "bench-admin-password";

async fn time_verify(verifier: &Verifier, token: &str, n: u32) -> Result<f64, Box<dyn std::error::Error>> {
    for _ in 0..n / 10 {
        verifier.verify(token).await?;
    }
    let start = Instant::now();
    for _ in 0..n {
        verifier.verify(token).await?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(n))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let revoked: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(500);
    let bin = std::env::var("ROSTER_BIN").unwrap_or_else(|_| "roster".into());
    let dir = std::env::temp_dir().join(format!("roster-verify-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", format!("sqlite://{}/roster.db", dir.display()))
        .env("ROSTER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // A new connection per request: the seeding must not race keep-alive closes.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let result = async {
        // Wait for readiness: the server is a separate process.
        let mut ready = false;
        for _ in 0..300 {
            if http
                .get(format!("{issuer}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if !ready {
            return Err::<(), Box<dyn std::error::Error>>("roster did not become ready".into());
        }
        let admin: Value = http
            .post(format!("{issuer}/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await?
            .json()
            .await?;
        let admin = admin["access_token"].as_str().ok_or("no admin token")?.to_string();
        let created: Value = http
            .post(format!("{issuer}/api/v1/principals"))
            .bearer_auth(&admin)
            .json(&json!({"kind": "service", "name": "bench", "scopes": ["bench:read"]}))
            .send()
            .await?
            .json()
            .await?;
        let secret = created["client_secret"].as_str().ok_or("no secret")?.to_string();
        let tokens = TokenSource::discover(&issuer, "bench", SecretString::from(secret.clone())).await?;
        let token = tokens.token(&TokenRequest::new().resource("bench")).await?;
        let verifier = Verifier::discover(VerifierConfig::new(&issuer, "bench")).await?;
        let plain = time_verify(&verifier, token.secret(), n).await?;

        // The feed with `revoked` entries in it, as after a busy day.
        for _ in 0..revoked {
            let t: Value = http
                .post(format!("{issuer}/oauth/token"))
                .basic_auth("bench", Some(&secret))
                .form(&[("grant_type", "client_credentials"), ("resource", "bench")])
                .send()
                .await?
                .json()
                .await?;
            let t = t["access_token"].as_str().ok_or("no token")?.to_string();
            http.post(format!("{issuer}/oauth/revoke"))
                .basic_auth("bench", Some(&secret))
                .form(&[("token", t)])
                .send()
                .await?;
        }
        let following = Verifier::discover(VerifierConfig {
            clock: Clock::system(),
            ..VerifierConfig::new(&issuer, "bench")
        })
        .await?;
        following
            .follow_revocations(tokens, RevocationPolicy::default())
            .await?;
        let with_feed = time_verify(&following, token.secret(), n).await?;
        println!("verify_bench: {n} verifications of an EdDSA access token, one thread");
        println!("verify_bench: without the feed: {plain:.2} us/verify");
        println!("verify_bench: with the feed ({revoked} revoked tokens held): {with_feed:.2} us/verify");
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
