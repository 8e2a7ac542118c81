//! Man pages for kibaverify, generated with `clap_mangen` from the same clap definitions as the parser: one page
//! per command and subcommand (`kibaverify.1`, `kibaverify-sign.1`, `kibaverify-sbom-attach.1`, ...).
//!
//! `cargo run -p kibaverify --example kibaverify-man -- DIR` (`make man` writes to target/man). Prints the pages
//! written, one path a line.

// The binary's own source, so the pages are built from exactly the `Cli` it parses with.
#[allow(dead_code, unused_imports)]
#[path = "../src/main.rs"]
mod kibaverify;
// What the binary's modules reach as `crate::...`.
use kibaverify::{password, registry_hint};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: kibaverify-man OUTPUT_DIR");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let command = kibaverify::cli_command();
    clap_mangen::generate_to(command, &dir)?;
    let mut pages: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    for page in pages {
        println!("{}", page.display());
    }
    Ok(())
}
