//! `refgen plan`: the library's plan of key ranges, written to its file (or
//! standard output), with a summary line and the `--json` document.

use anyhow::Result;
use refgen::core::writer::OutputTarget;

use crate::flags::PlanArgs;
use crate::render;
use crate::settings;

pub async fn command(args: PlanArgs, quiet: bool) -> Result<()> {
    let (options, store, target) = settings::range_plan(&args)?;
    let started = std::time::Instant::now();
    let plan = refgen::ranges::plan(&args.source, args.parts, &options, &store).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let destination = match &target {
        OutputTarget::File(path) => {
            refgen::ranges::write(&plan, path)?;
            path.display().to_string()
        }
        OutputTarget::Stdout => {
            render::print_json(&plan)?;
            "standard output".to_owned()
        }
    };
    if !quiet {
        render::plan_summary(&plan, &destination, elapsed);
    }
    if args.json {
        let estimated: Vec<u64> = plan.parts.iter().map(|p| p.estimated_objects).collect();
        render::print_json(&serde_json::json!({
            "output": destination,
            "source": plan.source,
            "parts": plan.parts.len(),
            "estimated_objects": plan.estimated_objects,
            "estimated_per_part": estimated,
            "exact": plan.exact,
            "requests": plan.requests,
            "fingerprint": plan.fingerprint,
            "elapsed_seconds": elapsed,
        }))?;
    }
    Ok(())
}
