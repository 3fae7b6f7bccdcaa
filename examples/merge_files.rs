//! Merges a patch file into a profile file under a schema file.
//!
//! ```text
//! cargo run --example merge_files -- --schema S.json --profile P.json --patch PATCH.json
//! ```
//!
//! Any one of the paths may be `-` for standard input. Prints the merged profile JSON on
//! stdout; on rejection prints every violation on stderr and exits with status 1 (status 2
//! for bad arguments or unreadable files).

use std::io::Read;
use std::process::ExitCode;

use profile_traits::{Patch, Profile, StoreSchema, merge_in_place};

const USAGE: &str =
    "usage: merge_files --schema FILE --profile FILE --patch FILE (FILE may be `-` for stdin)";

struct Args {
    schema: String,
    profile: String,
    patch: String,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut schema, mut profile, mut patch) = (None, None, None);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--schema" => &mut schema,
            "--profile" => &mut profile,
            "--patch" => &mut patch,
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        };
        *slot = Some(
            args.next()
                .ok_or_else(|| format!("`{flag}` needs a path\n{USAGE}"))?,
        );
    }
    match (schema, profile, patch) {
        (Some(schema), Some(profile), Some(patch)) => Ok(Args {
            schema,
            profile,
            patch,
        }),
        _ => Err(USAGE.to_owned()),
    }
}

/// Reads `path`, or standard input for `-`.
fn read_input(path: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let read = if path == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    read.map(|()| bytes)
        .map_err(|e| format!("cannot read `{path}`: {e}"))
}

fn run() -> Result<ExitCode, String> {
    let args = parse_args(std::env::args().skip(1))?;
    if [&args.schema, &args.profile, &args.patch]
        .iter()
        .filter(|p| p.as_str() == "-")
        .count()
        > 1
    {
        return Err("only one of the inputs can be `-`".to_owned());
    }
    let schema: StoreSchema = serde_json::from_slice(&read_input(&args.schema)?)
        .map_err(|e| format!("schema `{}`: {e}", args.schema))?;
    let mut profile: Profile = serde_json::from_slice(&read_input(&args.profile)?)
        .map_err(|e| format!("profile `{}`: {e}", args.profile))?;
    let patch_bytes = read_input(&args.patch)?;
    let result = Patch::from_slice(&patch_bytes)
        .and_then(|patch| merge_in_place(&mut profile, &patch, &schema));
    match result {
        Ok(_) => {
            let json = serde_json::to_string_pretty(&profile).map_err(|e| e.to_string())?;
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::from(1))
        }
    }
}

fn main() -> ExitCode {
    run().unwrap_or_else(|message| {
        eprintln!("merge_files: {message}");
        ExitCode::from(2)
    })
}
