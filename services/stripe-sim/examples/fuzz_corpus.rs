//! Writes a seed corpus for the core fold's fuzz target (`fuzz/`, target `fold`): runs of
//! consecutive facts of small stripe-sim worlds, in the target's input format (`account 0x1f
//! raw` per fact, facts separated by 0x1e), plus Stripe's own sample objects one by one.
//!
//! `cargo run -p ledgerline-stripe-sim --example fuzz_corpus -- DIR [FIXTURES_DIR]`
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::Write as _;

use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};

const PLATFORM: &str = "acct_platform";

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: fuzz_corpus DIR [FIXTURES_DIR]"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut written = 0;
    for seed in 1..=4 {
        let world = World::generate(&WorldConfig::with_facts(seed, 400));
        let facts: Vec<(String, Vec<u8>)> = world
            .objects
            .iter()
            .filter(|o| matches!(o.kind, ObjectKind::Event | ObjectKind::BalanceTransaction))
            .map(|o| {
                let account = o.account.clone().unwrap_or_else(|| PLATFORM.to_owned());
                (account, o.json.clone().into_bytes())
            })
            .collect();
        // Runs of 1, 3, 8 and 20 facts, spread over the world.
        for len in [1, 3, 8, 20] {
            for start in (0..facts.len().saturating_sub(len)).step_by(facts.len() / 12 + 1) {
                let mut out = Vec::new();
                for (i, (account, raw)) in facts[start..start + len].iter().enumerate() {
                    if i > 0 {
                        out.push(0x1e);
                    }
                    out.extend_from_slice(account.as_bytes());
                    out.push(0x1f);
                    out.extend_from_slice(raw);
                }
                let path = dir.join(format!("world{seed}-{len}-{start}"));
                std::fs::File::create(path)
                    .unwrap()
                    .write_all(&out)
                    .unwrap();
                written += 1;
            }
        }
    }
    if let Some(fixtures) = args.next() {
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let mut out = format!("{PLATFORM}\x1f").into_bytes();
                out.extend(std::fs::read(&path).unwrap());
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                std::fs::write(dir.join(format!("fixture-{name}")), out).unwrap();
                written += 1;
            }
        }
    }
    println!("{written} seed inputs in {}", dir.display());
}
