//! The argon2 bound of the password grant: how long one argon2id
//! verification takes with Roster's parameters, on one core. The password
//! grant cannot beat `cores / that time`; `benches/bench.sh` prints the bound
//! beside the measured rate. It also prints how many verifications per second
//! one thread per core manages together (argon2 is memory-hard: parallel runs
//! share the caches and memory bandwidth). Run: `cargo bench --bench argon2`.

use std::time::Instant;

use roster::auth::password::{hash_password, verify_password};
use roster::auth::secrets::SecretString;

fn main() {
    let password = SecretString::new("bench-password-1");
    let Ok(phc) = hash_password(&password) else {
        eprintln!("argon2: hashing failed");
        std::process::exit(1);
    };
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            assert!(verify_password(&password, &phc));
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("argon2id_verify_ms={:.2}", times[times.len() / 2]);

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let per_thread = 15;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                for _ in 0..per_thread {
                    assert!(verify_password(&password, &phc));
                }
            });
        }
    });
    let rate = (cores * per_thread) as f64 / start.elapsed().as_secs_f64();
    println!("argon2id_parallel_per_s={rate:.0}");
}
