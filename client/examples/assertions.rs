//! Print `private_key_jwt` assertions signed by a key, one per line (for
//! load tests, which need a fresh `jti` per request), or the key's public
//! JWK Set to register with Roster.
//!
//!   cargo run --release -p roster-client --example assertions -- --key k.pem --jwks
//!   cargo run --release -p roster-client --example assertions -- --key k.pem --client billing \
//!       --aud https://roster.example/oauth/token --count 100000

use std::io::Write;

use clap::Parser;
use roster_client::{AssertionSigner, SigningAlg};

#[derive(Parser)]
struct Args {
    /// An Ed25519 private key, PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
    #[arg(long)]
    key: std::path::PathBuf,
    /// The key's `kid`.
    #[arg(long, default_value = "bench-1")]
    kid: String,
    /// Print the public JWK Set and stop.
    #[arg(long)]
    jwks: bool,
    /// The client id (`iss` and `sub`).
    #[arg(long, default_value = "")]
    client: String,
    /// The audience: Roster's token endpoint URL.
    #[arg(long, default_value = "")]
    aud: String,
    /// How many assertions.
    #[arg(long, default_value_t = 1)]
    count: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let signer = AssertionSigner::from_pem(SigningAlg::EdDsa, &std::fs::read(&args.key)?, Some(&args.kid))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.jwks {
        writeln!(out, "{}", serde_json::to_string(&signer.public_jwk_set()?)?)?;
        return Ok(());
    }
    let now = chrono::Utc::now();
    for _ in 0..args.count {
        writeln!(out, "{}", signer.sign(&args.client, &args.aud, now)?)?;
    }
    Ok(())
}
