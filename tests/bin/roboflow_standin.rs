//! The Roboflow stand-in as a process, for the Python tests: it prints one JSON
//! line (`base_url`, `api_key`, `workspace`), serves until its standard input
//! closes, then prints what it saw (`violations` of the contract, and each
//! batch's `ingested` names) and exits 1 if the contract was departed from.

use std::io::{BufRead, Write};

use refgen_e2e::roboflow::FakeRoboflow;

fn main() {
    let fake = FakeRoboflow::start();
    let hello = serde_json::json!({
        "base_url": fake.base_url(), "api_key": fake.api_key(), "workspace": fake.workspace(),
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{hello}");
    let _ = out.flush();
    drop(out);
    // Until the test closes our standard input.
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    let (violations, batches) = {
        let state = fake.state.lock().unwrap_or_else(|p| p.into_inner());
        (
            state.violations.clone(),
            state.ingested.keys().cloned().collect::<Vec<_>>(),
        )
    };
    let ingested: serde_json::Map<String, serde_json::Value> = batches
        .into_iter()
        .map(|batch| {
            let names: Vec<String> = fake.ingested(&batch).into_keys().collect();
            (batch, names.into())
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({"violations": violations, "ingested": ingested})
    );
    std::process::exit(i32::from(!violations.is_empty()));
}
