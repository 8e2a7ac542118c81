//! Shell and docs conventions (issue 20 item 8): `kibaverify completion bash|zsh|fish` (a script that names the
//! real subcommands; bash loads it), the man pages of examples/kibaverify-man.rs (`make man`: one page per
//! subcommand, rendered by groff without a warning) and `kibaverify version` (text and `--json`, the commit being
//! the repository's HEAD when built from git).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kibaverify");

fn kibaverify(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kibaverify {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The subcommands `kibaverify help` lists (its `Commands:` section), `help` excluded.
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = vec!["help"];
    args.extend_from_slice(path);
    let help = stdout(&kibaverify(&args));
    let section = help
        .split("Commands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: section in {help}"));
    section
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

const SOME_SUBCOMMANDS: [&str; 8] = [
    "verify",
    "verify-attestation",
    "attest",
    "sign",
    "sbom",
    "digest",
    "completion",
    "version",
];

#[test]
fn completion_scripts_name_the_real_subcommands() {
    let listed = subcommands(&[]);
    for name in SOME_SUBCOMMANDS {
        assert!(listed.iter().any(|l| l == name), "{name} not in {listed:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&kibaverify(&["completion", shell]));
        assert!(script.len() > 1000, "{shell}: {script}");
        for name in &listed {
            assert!(
                script.contains(name.as_str()),
                "{shell} script lacks {name}"
            );
        }
        // Nested subcommands and flags too (fish names long flags without their dashes: `-l predicate`).
        for word in ["attach", "predicate", "insecure-registry"] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    // An unknown shell is bad input, exit 2.
    let out = Command::new(BIN)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bash_loads_the_completion_script_and_completes_subcommands() {
    let dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .args([
            "-c",
            "source <(kibaverify completion bash) && complete -p kibaverify",
        ])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registered = stdout(&out);
    assert!(
        registered.starts_with("complete ") && registered.trim_end().ends_with(" kibaverify"),
        "{registered}"
    );
    // The loaded function completes: `kibaverify verify-a<TAB>` offers verify-attestation, `kibaverify sbom <TAB>`
    // the sbom subcommands.
    let function = registered
        .split_whitespace()
        .skip_while(|w| *w != "-F")
        .nth(1)
        .unwrap()
        .to_string();
    let complete = |words: &str, cword: usize| {
        let script = format!(
            "source <(kibaverify completion bash) && COMP_WORDS=({words}) && COMP_CWORD={cword} && \
             COMP_LINE='{words}' && COMP_POINT=${{#COMP_LINE}} && {function} kibaverify \"${{COMP_WORDS[$COMP_CWORD]}}\" \
             \"${{COMP_WORDS[$COMP_CWORD-1]}}\" && printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash")
            .args(["-c", &script])
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    let offered = complete("kibaverify verify-a", 1);
    assert_eq!(offered.trim(), "verify-attestation", "{offered}");
    let offered = complete("kibaverify sbom ''", 2);
    for name in ["attach", "list", "get"] {
        assert!(offered.lines().any(|l| l == name), "{offered}");
    }
}

/// The newest modification time of the files under `dir`.
fn newest_under(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_under(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(time);
    }
    newest
}

/// The man page generator, built by `cargo test` with the rest of the crate's targets; built here when missing or
/// older than the sources it compiles (e.g. `cargo test --test completion_man_version` alone after an edit). Its
/// age is compared with the sources, not with the binary: both come out of one `cargo test` in either order, and
/// `cargo build -p kibaverify` unifies features differently from `--workspace`, compiling a dozen crates again.
fn man_generator() -> PathBuf {
    let debug_dir = Path::new(BIN).parent().unwrap();
    let generator = debug_dir.join("examples/kibaverify-man");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources =
        newest_under(&crate_dir.join("src")).max(newest_under(&crate_dir.join("examples")));
    if modified(&generator).is_none() || modified(&generator) < sources {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "kibaverify", "--example", "kibaverify-man"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success());
    }
    generator
}

#[test]
fn man_pages_one_per_subcommand_rendered_by_groff() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(man_generator())
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = stdout(&out);
    let mut expected = vec!["kibaverify".to_string()];
    for name in subcommands(&[]) {
        expected.push(format!("kibaverify-{name}"));
        for nested in ["sbom", "policy", "provenance"] {
            if name == nested {
                for sub in subcommands(&[nested]) {
                    expected.push(format!("kibaverify-{nested}-{sub}"));
                }
            }
        }
    }
    assert!(expected.contains(&"kibaverify-sbom-attach".to_string()));
    assert!(expected.contains(&"kibaverify-policy-check".to_string()));
    for page in &expected {
        let path = dir.path().join(format!("{page}.1"));
        assert!(path.is_file(), "no {} in {printed}", path.display());
        assert!(printed.contains(&path.display().to_string()), "{printed}");
        let roff = std::fs::read_to_string(&path).unwrap();
        // The roff header: `.TH NAME 1 ...` naming the page.
        let th = roff.lines().find(|l| l.starts_with(".TH ")).unwrap();
        assert!(th.starts_with(&format!(".TH {page} 1")), "{page}: {th}");
        assert!(
            roff.contains(".SH NAME") && roff.contains(".SH SYNOPSIS"),
            "{page}"
        );
    }
    // No page for `help`, nothing else written.
    let written = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(written, expected.len(), "{printed}");

    // groff renders each page without a warning (-k: UTF-8 input through preconv, as man does, for the en dashes
    // and the like of the help texts; -ww: all warnings; -z: no output, only diagnostics); `man -l`
    // renders the top page with the subcommands in it.
    for page in &expected {
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(dir.path().join(format!("{page}.1")))
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff {page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("man")
        .args(["-l", "-Tutf8"])
        .arg(dir.path().join("kibaverify.1"))
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "man -l: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8_lossy(&out.stdout);
    for name in SOME_SUBCOMMANDS {
        assert!(rendered.contains(name), "{name} not in {rendered}");
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
}

#[test]
fn version_text_and_json_carry_every_field() {
    let json: serde_json::Value =
        serde_json::from_slice(&kibaverify(&["version", "--json"]).stdout).unwrap();
    let object = json.as_object().unwrap();
    let keys: Vec<_> = object.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "buildDate",
            "gitCommit",
            "platform",
            "rustVersion",
            "version"
        ],
        "{json}"
    );
    let field = |k: &str| object[k].as_str().unwrap().to_string();
    assert_eq!(field("version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(
        field("platform"),
        format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)
    );
    let rustc = field("rustVersion");
    assert!(rustc.starts_with("rustc 1."), "{rustc}");
    let date = field("buildDate");
    let b = date.as_bytes();
    assert!(
        date.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && date.ends_with('Z')
            && date[..4].parse::<u32>().unwrap() >= 2024,
        "{date}"
    );
    // Built from this git checkout: the commit is HEAD, or (other commits landing between the build and this
    // test) an ancestor of it.
    let commit = field("gitCommit");
    if let Some(head) = git(&["rev-parse", "HEAD"]) {
        assert_eq!(commit.len(), 40, "{commit}");
        assert!(
            commit == head || git(&["merge-base", "--is-ancestor", &commit, "HEAD"]).is_some(),
            "{commit} is neither HEAD ({head}) nor an ancestor of it"
        );
    }

    let text = stdout(&kibaverify(&["version"]));
    for (label, key) in [
        ("Version:", "version"),
        ("GitCommit:", "gitCommit"),
        ("BuildDate:", "buildDate"),
        ("RustVersion:", "rustVersion"),
        ("Platform:", "platform"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {text}"));
        assert_eq!(line[label.len()..].trim(), field(key), "{text}");
    }
}
