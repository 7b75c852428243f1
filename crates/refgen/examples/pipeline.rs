//! generate → verify → submit from Rust: `pipeline SOURCE BATCH_ID` writes the
//! images under SOURCE to refs.jsonl, checks it, submits it inline and waits
//! until Roboflow has ingested every reference. Credentials, endpoints and the
//! Roboflow key come from the environment, as for the command line.

use refgen::core::writer::OutputTarget;
use refgen::generate::{GenerateOptions, Output, Plan};
use refgen::store::StoreOptions;
use refgen::submit::{SubmitOptions, SubmitReferences};
use refgen::verify::VerifyOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(source), Some(batch)) = (args.next(), args.next()) else {
        return Err("usage: pipeline SOURCE BATCH_ID".into());
    };
    let path = std::path::PathBuf::from("refs.jsonl");
    let options = GenerateOptions {
        images: true,
        ..GenerateOptions::default()
    };
    let mut plan = Plan::new(&source, &options)?;
    let output = Output::Target(OutputTarget::File(path.clone()));
    let made = refgen::generate::run(&mut plan, &StoreOptions::default(), output, &mut |_| {}).await?;
    let checked = refgen::verify::verify(&path, &VerifyOptions::default()).await?;
    if !checked.ok {
        return Err(format!("refs.jsonl: {}", checked.describe()).into());
    }
    let mut submission = SubmitOptions::new(batch, SubmitReferences::Files(vec![path]));
    submission.wait = true;
    let report = refgen::submit::run(submission, &mut |event| eprintln!("{event:?}")).await?;
    println!(
        "{} written, {} fetched, {}",
        made.written,
        checked.fetched,
        serde_json::to_string(&report)?
    );
    Ok(())
}
