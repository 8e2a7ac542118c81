//! `kibaverify sbom attach|list|get` against real registries (docker-registry without the referrers API, so the
//! tag fallback; go-containerregistry's with it), read back by the real oras (v1.3.6 peer: `discover` sees our
//! artifactType, `pull` gets the same bytes) and, signed with `--sign`, verified by the real cosign (v3.1.3 peer,
//! `verify-attestation --type https://cyclonedx.org/bom`) in both layouts. `get --verify` refuses an SBOM attested
//! with another key; bad files exit 2 naming the problem, and nothing is pushed for them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{Tools, assert_code, registry_with_fixtures, run_logged as run, testdata};

/// Planted in COSIGN_PASSWORD; must never appear in any output.
const PASSWORD: &str = "planted-Sbom-pw-71c2e9";
const CYCLONEDX: &str = "sbom/cyclonedx/examples/trivy_conda-cyclonedx.json.golden";
const SPDX: &str = "sbom/spdx/examples/example10_spdx2.3_hello-source.spdx.json";

/// Copies `testdata/<from>` into the test directory as `name`; returns its bytes.
fn copy(dir: &Path, from: &str, name: &str) -> Vec<u8> {
    let bytes = std::fs::read(testdata().join(from)).unwrap();
    std::fs::write(dir.join(name), &bytes).unwrap();
    bytes
}

fn oras(dir: &Path, args: &[&str]) -> Command {
    let oras = peer_binary("oras").expect("the oras peer is not built: run `make peers`");
    let mut c = Command::new(oras);
    c.current_dir(dir)
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args);
    c
}

fn attach_list_get_round_trip(mode: RegistryMode) {
    let reg = registry_with_fixtures(mode);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::new(dir, &reg, None);
    let mut t = String::new();
    let image = tools.fixture("app");
    let cdx = copy(dir, CYCLONEDX, "bom.cdx.json");
    let spdx = copy(dir, SPDX, "hello.spdx.json");

    // attach: one of each format; stdout is the referrer's digest.
    let mut referrers = Vec::new();
    for (file, media_type) in [
        ("bom.cdx.json", "application/vnd.cyclonedx+json"),
        ("hello.spdx.json", "application/spdx+json"),
    ] {
        let r = run(
            &mut tools.kibaverify(&["sbom", "attach", &image, "--file", file]),
            &mut t,
        );
        assert_code(&r, 0, "kibaverify sbom attach");
        assert!(r.stderr.contains(media_type), "{}", r.stderr);
        let digest = r.stdout.trim().to_string();
        assert!(digest.starts_with("sha256:"), "{}", r.stdout);
        referrers.push((digest, media_type, file));
    }
    let via = match mode {
        RegistryMode::Referrers => "referrers API",
        _ => "fallback",
    };
    assert!(t.contains(via), "{t}");

    // list: both, attached, with their formats and types.
    let r = run(&mut tools.kibaverify(&["sbom", "list", &image]), &mut t);
    assert_code(&r, 0, "kibaverify sbom list");
    for (digest, media_type, _) in &referrers {
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains(digest.as_str()))
            .unwrap_or_else(|| panic!("{digest} not listed:\n{}", r.stdout));
        assert!(line.starts_with("attached\t"), "{line}");
        assert!(line.ends_with(media_type), "{line}");
    }
    let r = run(
        &mut tools.kibaverify(&[
            "sbom", "list", &image, "--format", "spdx", "--output", "json",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sbom list --format spdx --output json");
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(listed["sboms"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["sboms"][0]["type"], "application/spdx+json");

    // get: the bytes attached, to a file or stdout; both formats present, so --format is needed.
    let r = run(&mut tools.kibaverify(&["sbom", "get", &image]), &mut t);
    assert_code(&r, 2, "kibaverify sbom get without --format");
    assert!(r.stderr.contains("--format"), "{}", r.stderr);
    let r = run(
        &mut tools.kibaverify(&[
            "sbom",
            "get",
            &image,
            "--format",
            "cyclonedx",
            "--output-file",
            "got.cdx.json",
        ]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify sbom get --format cyclonedx --output-file",
    );
    assert_eq!(std::fs::read(dir.join("got.cdx.json")).unwrap(), cdx);
    let r = run(
        &mut tools.kibaverify(&["sbom", "get", &image, "--format", "spdx"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sbom get --format spdx");
    assert_eq!(r.stdout.as_bytes(), spdx.as_slice());

    // oras discover sees both with our artifactType; oras pull gets the same bytes.
    let r = run(
        &mut oras(
            dir,
            &["discover", "--plain-http", "--format", "json", &image],
        ),
        &mut t,
    );
    assert_code(&r, 0, "oras discover");
    let discovered: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let found = discovered["referrers"]
        .as_array()
        .or_else(|| discovered["manifests"].as_array())
        .unwrap_or_else(|| panic!("{discovered}"));
    let repository = image.rsplit_once(':').unwrap().0;
    for (digest, media_type, file) in &referrers {
        let entry = found
            .iter()
            .find(|d| d["digest"] == digest.as_str())
            .unwrap_or_else(|| panic!("oras discover misses {digest}: {discovered}"));
        assert_eq!(entry["artifactType"], *media_type, "{entry}");
        let out = dir.join(format!("pulled-{}", &digest[7..19]));
        let r = run(
            &mut oras(
                dir,
                &[
                    "pull",
                    "--plain-http",
                    "-o",
                    out.to_str().unwrap(),
                    &format!("{repository}@{digest}"),
                ],
            ),
            &mut t,
        );
        assert_code(&r, 0, "oras pull");
        let pulled: PathBuf = out.join(file);
        assert_eq!(
            std::fs::read(&pulled).unwrap(),
            std::fs::read(dir.join(file)).unwrap(),
            "oras pull of {digest}"
        );
    }
}

#[test]
fn sboms_attach_list_get_and_oras_reads_them_via_the_referrers_api() {
    attach_list_get_round_trip(RegistryMode::Referrers);
}

#[test]
fn sboms_attach_list_get_and_oras_reads_them_via_the_fallback_tag() {
    attach_list_get_round_trip(RegistryMode::Plain);
}

#[test]
fn signed_sboms_verify_with_cosign_in_both_layouts_and_another_key_is_refused() {
    let reg = registry_with_fixtures(RegistryMode::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::new(dir, &reg, Some(PASSWORD));
    let mut t = String::new();
    let image = tools.fixture("app");
    let cdx = copy(dir, CYCLONEDX, "bom.cdx.json");
    tools.generate_both_key_pairs(&mut t);

    let r = run(
        &mut tools.kibaverify(&[
            "sbom",
            "attach",
            &image,
            "--file",
            "bom.cdx.json",
            "--sign",
            "--key",
            "ours.key",
            "--layout",
            "both",
            "--output",
            "json",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sbom attach --sign --layout both");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["artifactType"], "application/vnd.cyclonedx+json");
    assert_eq!(report["predicateType"], "https://cyclonedx.org/bom");
    assert_eq!(
        report["attestations"]["legacy"]["signatures"], 1,
        "{report}"
    );
    assert!(report["attestations"]["bundle"].is_object(), "{report}");
    let image_by_digest = tools.image_by_digest(&image, &mut t);

    // The real cosign verifies both layouts with our public key, and prints our SBOM as the predicate.
    for legacy in [true, false] {
        let mut args = vec![
            "verify-attestation",
            "--key",
            "ours.pub",
            "--type",
            "https://cyclonedx.org/bom",
            "--insecure-ignore-tlog",
            "--allow-http-registry",
        ];
        if legacy {
            args.push("--new-bundle-format=false");
        }
        args.push(&image_by_digest);
        let r = run(&mut tools.cosign(&args), &mut t);
        assert_code(
            &r,
            0,
            &format!("cosign verify-attestation (legacy: {legacy})"),
        );
        let statement = r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|env| {
                use base64::Engine as _;
                let payload = env["payload"].as_str()?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(payload)
                    .ok()?;
                serde_json::from_slice::<serde_json::Value>(&bytes).ok()
            })
            .find(|s| s["predicateType"] == "https://cyclonedx.org/bom")
            .unwrap_or_else(|| panic!("no CycloneDX statement printed:\n{}", r.stdout));
        let ours: serde_json::Value = serde_json::from_slice(&cdx).unwrap();
        assert_eq!(statement["predicate"], ours);
    }

    // list shows the attached referrer and both attestations.
    let r = run(&mut tools.kibaverify(&["sbom", "list", &image]), &mut t);
    assert_code(&r, 0, "kibaverify sbom list");
    let kinds: Vec<&str> = r
        .stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "attached").count(),
        1,
        "{}",
        r.stdout
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "attested").count(),
        2,
        "{}",
        r.stdout
    );

    // get --verify with our key: the verified predicate, which is our file.
    let r = run(
        &mut tools.kibaverify(&[
            "sbom",
            "get",
            &image,
            "--verify",
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "--output-file",
            "verified.json",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sbom get --verify --key ours.pub");
    assert!(
        r.stderr.contains("VERIFIED cyclonedx SBOM")
            || r.stderr.contains("VERIFIED CycloneDX SBOM"),
        "{}",
        r.stderr
    );
    let verified = std::fs::read(dir.join("verified.json")).unwrap();
    assert_eq!(
        verified,
        String::from_utf8(cdx.clone()).unwrap().trim().as_bytes()
    );

    // get --verify with another key: not verified, exit 1, nothing written.
    let r = run(
        &mut tools.kibaverify(&[
            "sbom",
            "get",
            &image,
            "--verify",
            "--key",
            "cosign.pub",
            "--insecure-ignore-tlog",
            "--output-file",
            "refused.json",
        ]),
        &mut t,
    );
    assert_code(&r, 1, "kibaverify sbom get --verify --key cosign.pub");
    assert!(r.stderr.contains("NOT VERIFIED"), "{}", r.stderr);
    assert!(r.stderr.contains("wrong-key"), "{}", r.stderr);
    assert!(!dir.join("refused.json").exists());
    assert!(!t.contains(PASSWORD), "the planted password leaked");
}

#[test]
fn bad_sboms_exit_2_naming_the_problem_and_push_nothing() {
    let reg = registry_with_fixtures(RegistryMode::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::new(dir, &reg, None);
    let mut t = String::new();
    let image = tools.fixture("app");

    std::fs::write(
        dir.join("not.json"),
        b"{\"bomFormat\": \"CycloneDX\",\n  \"specVersion\": ",
    )
    .unwrap();
    std::fs::write(
        dir.join("neither.json"),
        br#"{"name": "not an SBOM", "packages": []}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("cdx-1.3.json"),
        br#"{"bomFormat": "CycloneDX", "specVersion": "1.3", "version": 1, "components": []}"#,
    )
    .unwrap();
    copy(
        dir,
        "sbom/cyclonedx/spec-validation/1.6/invalid-metadata-timestamp-1.6.json",
        "bad-timestamp.json",
    );
    // A key twice: valid against the schema whichever value a reader keeps, refused all the same (whole, and in
    // a document large enough to be validated streaming, inside a streamed component).
    std::fs::write(
        dir.join("twice.json"),
        "{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"1.6\", \"version\": 1,\n  \"components\": [{\"type\": \"library\", \"name\": \"left-pad\", \"name\": \"evil-pad\"}]}",
    )
    .unwrap();
    let mut large =
        String::from(r#"{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":["#);
    let n = kibaship_sbom::STREAMING_THRESHOLD_BYTES / 100 + 1;
    for i in 0..n {
        let name = if i == n - 1 {
            r#""name":"p","name":"q""#.to_string()
        } else {
            format!(r#""name":"package-{i}""#)
        };
        large.push_str(&format!(
            r#"{}{{"type":"library",{name},"description":"{}"}}"#,
            if i == 0 { "" } else { "," },
            "x".repeat(60)
        ));
    }
    large.push_str("]}");
    assert!(large.len() >= kibaship_sbom::STREAMING_THRESHOLD_BYTES);
    std::fs::write(dir.join("twice-large.json"), &large).unwrap();
    let large_pointer = format!("/components/{}/name", n - 1);
    // A sparse file one byte over the limit: refused while reading, before any parsing.
    let big = std::fs::File::create(dir.join("huge.json")).unwrap();
    big.set_len(kibaship_sbom::MAX_SBOM_BYTES + 1).unwrap();
    drop(big);

    for (file, message) in [
        (
            "not.json",
            "the SBOM is not JSON: EOF while parsing a value (line 2, column 17)",
        ),
        (
            "neither.json",
            "the document is neither CycloneDX (no \"bomFormat\" and \"specVersion\") nor SPDX (no \"spdxVersion\")",
        ),
        (
            "cdx-1.3.json",
            "CycloneDX version 1.3 is not supported (field /specVersion): supported are 1.4, 1.5, 1.6, 1.7",
        ),
        (
            "bad-timestamp.json",
            "CycloneDX 1.6 document is invalid against its official JSON schema (1 violation): at /metadata/timestamp: \"2020-04-13\" is not a \"date-time\" (schema rule /definitions/metadata/properties/timestamp/format)",
        ),
        ("huge.json", "134217728"),
        (
            "twice.json",
            "the SBOM has the key \"name\" twice in one object (at JSON pointer /components/0/name, line 2, column 63)",
        ),
        (
            "twice-large.json",
            &*format!(
                "the SBOM has the key \"name\" twice in one object (at JSON pointer {large_pointer}, line 1, column "
            ),
        ),
    ] {
        let r = run(
            &mut tools.kibaverify(&["sbom", "attach", &image, "--file", file]),
            &mut t,
        );
        assert_code(&r, 2, &format!("kibaverify sbom attach --file {file}"));
        assert!(r.stderr.contains(message), "{file}: {}", r.stderr);
        assert!(r.stderr.contains(file), "{file}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    // --sign without a signer, and a signer without --sign, are refused before anything is read or pushed.
    let r = run(
        &mut tools.kibaverify(&["sbom", "attach", &image, "--file", "neither.json", "--sign"]),
        &mut t,
    );
    assert_code(&r, 2, "--sign without --key");
    assert!(
        r.stderr.contains("--sign needs --key or --keyless"),
        "{}",
        r.stderr
    );

    // No blob of a refused file exists.
    for file in [
        "not.json",
        "neither.json",
        "cdx-1.3.json",
        "bad-timestamp.json",
        "twice.json",
        "twice-large.json",
    ] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert!(
            !has_blob(&reg, &image, &bytes),
            "{file} was pushed as a blob"
        );
    }

    // Nothing was attached.
    let r = run(&mut tools.kibaverify(&["referrers", &image]), &mut t);
    assert_code(&r, 0, "kibaverify referrers");
    assert_eq!(r.stdout.trim(), "", "{}", r.stderr);
    let r = run(&mut tools.kibaverify(&["sbom", "get", &image]), &mut t);
    assert_code(&r, 1, "kibaverify sbom get of an image without SBOMs");
    assert!(
        r.stderr.contains("no SBOM is attached to or attested on"),
        "{}",
        r.stderr
    );
}

/// A UTF-8 byte-order mark is not part of the JSON (RFC 8259 forbids sending one): the document is validated and
/// attached without it; what `get` returns is the file without its first three bytes.
#[test]
fn an_sbom_with_a_utf8_byte_order_mark_is_attached_without_it() {
    let reg = registry_with_fixtures(RegistryMode::Referrers);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::new(dir, &reg, None);
    let mut t = String::new();
    let image = tools.fixture("app");
    let cdx = std::fs::read(testdata().join(CYCLONEDX)).unwrap();
    let mut marked = vec![0xEF, 0xBB, 0xBF];
    marked.extend_from_slice(&cdx);
    std::fs::write(dir.join("marked.cdx.json"), &marked).unwrap();

    let r = run(
        &mut tools.kibaverify(&["sbom", "attach", &image, "--file", "marked.cdx.json"]),
        &mut t,
    );
    assert_code(
        &r,
        0,
        "kibaverify sbom attach of a file with a byte-order mark",
    );
    let r = run(
        &mut tools.kibaverify(&["sbom", "get", &image, "--output-file", "got.cdx.json"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sbom get");
    let got = std::fs::read(dir.join("got.cdx.json")).unwrap();
    assert_eq!(got.len(), marked.len() - 3);
    assert!(
        got == cdx,
        "the attached SBOM is not the file without its mark"
    );
}

/// A UTF-16 SBOM is validated and attached as the UTF-8 text it transcodes to (the digest hashed beside the
/// validation, of the file's own bytes, is not the one used); the file's own bytes are not pushed.
#[test]
fn a_utf16_sbom_is_attached_as_utf8_and_its_own_bytes_are_not_pushed() {
    let reg = registry_with_fixtures(RegistryMode::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::new(dir, &reg, None);
    let mut t = String::new();
    let image = tools.fixture("app");
    let cdx = std::fs::read_to_string(testdata().join(CYCLONEDX)).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(cdx.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(dir.join("utf16.cdx.json"), &utf16).unwrap();

    let r = run(
        &mut tools.kibaverify(&["sbom", "attach", &image, "--file", "utf16.cdx.json"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sbom attach of a UTF-16 file");
    let r = run(
        &mut tools.kibaverify(&["sbom", "get", &image, "--output-file", "got.cdx.json"]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sbom get");
    let got = std::fs::read_to_string(dir.join("got.cdx.json")).unwrap();
    assert!(
        got == cdx,
        "the attached SBOM is not the file's text as UTF-8"
    );

    assert!(
        !has_blob(&reg, &image, &utf16),
        "the UTF-16 bytes were pushed as a blob"
    );
}

/// Whether the repository of `image` on the plain-HTTP test registry `reg` has a blob of `bytes`.
fn has_blob(reg: &TestRegistry, image: &str, bytes: &[u8]) -> bool {
    let client = kibaship_oci::RegistryClient::new(kibaship_oci::ClientConfig {
        insecure_registries: vec![reg.host()],
        use_docker_config: false,
        ..kibaship_oci::ClientConfig::default()
    })
    .unwrap();
    let repository = kibaship_oci::Reference::parse(image).unwrap();
    let digest = kibaship_oci::Digest::sha256_of(bytes);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.blob_exists(&repository, &digest))
        .unwrap()
}

/// While the file is validated, `sbom attach` reads from the registry (the image's manifest, whether it has the
/// referrers API). A file found invalid is reported at once, without waiting for those reads: here the
/// registry is a stand-in that accepts connections and never answers (a stall the real registries cannot be
/// made to show), and `--timeout 0` sets no limit, so waiting for it would never end. The 120 s bound only
/// keeps a regression from hanging the suite.
#[test]
fn an_invalid_sbom_is_refused_without_waiting_for_a_registry_that_never_answers_stand_in() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().flatten().collect();
        drop(held);
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("neither.json"),
        br#"{"name": "not an SBOM", "packages": []}"#,
    )
    .unwrap();
    let tools = Tools {
        dir,
        registry: Some(host.clone()),
        password: None,
    };
    let image = format!("{host}/fixtures/app:v1");
    let mut child = tools
        .kibaverify(&[
            "sbom",
            "attach",
            &image,
            "--file",
            "neither.json",
            "--timeout",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("sbom attach of an invalid file waited for a registry that never answers");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("neither.json")
            && stderr.contains(
                "the document is neither CycloneDX (no \"bomFormat\" and \"specVersion\") nor SPDX"
            ),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A valid CycloneDX 1.6 document of at least `min_bytes`, told apart from others by `serial`.
fn large_cyclonedx(serial: u32, min_bytes: usize) -> String {
    let mut doc = format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"urn:uuid:00000000-0000-0000-0000-{serial:012}","version":1,"components":["#
    );
    let mut i = 0;
    while doc.len() < min_bytes {
        doc.push_str(&format!(
            r#"{}{{"type":"library","name":"package-{i}","version":"1.0.{i}","purl":"pkg:npm/package-{i}@1.0.{i}"}}"#,
            if i == 0 { "" } else { "," }
        ));
        i += 1;
    }
    doc.push_str("]}");
    doc
}

/// The upload sessions that hold bytes in docker-registry's storage (`_uploads/<uuid>/data`, any repository).
fn sessions_with_data(reg: &TestRegistry) -> usize {
    fn walk(dir: &Path, found: &mut usize) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.file_name().is_some_and(|n| n == "data")
                && path.ancestors().any(|a| a.ends_with("_uploads"))
            {
                *found += 1;
            }
        }
    }
    let mut found = 0;
    walk(reg.storage_dir(), &mut found);
    found
}

/// A large SBOM is sent into an upload session while it is validated (the registry logs the `PATCH`), and that
/// session becomes the blob only once the file is valid: what `get` returns is the file. When the push stops
/// after the validation (here a signing key that cannot be read), the session is cancelled (`DELETE`) and no blob
/// of the file exists; docker-registry then holds no session data. go-containerregistry's registry cannot
/// cancel a session: there the file's session is left, never a blob.
#[test]
fn a_large_sbom_is_sent_while_validated_and_becomes_a_blob_only_when_attached() {
    for mode in [RegistryMode::Plain, RegistryMode::Referrers] {
        let reg = registry_with_fixtures(mode);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let tools = Tools::new(dir, &reg, None);
        let mut t = String::new();
        let image = tools.fixture("app");
        let log = || std::fs::read_to_string(reg.log_path()).unwrap();
        let patches = |log: &str| log.lines().filter(|l| l.contains("PATCH")).count();

        let large = large_cyclonedx(1, kibaship_sbom::STREAMING_THRESHOLD_BYTES + 1_000_000);
        std::fs::write(dir.join("large.cdx.json"), &large).unwrap();
        let before = patches(&log());
        let r = run(
            &mut tools.kibaverify(&["sbom", "attach", &image, "--file", "large.cdx.json"]),
            &mut t,
        );
        assert_code(&r, 0, &format!("{mode}: sbom attach of a large file"));
        assert!(
            patches(&log()) > before,
            "{mode}: the file was not sent into an upload session"
        );
        let r = run(
            &mut tools.kibaverify(&["sbom", "get", &image, "--output-file", "got.cdx.json"]),
            &mut t,
        );
        assert_code(&r, 0, &format!("{mode}: sbom get"));
        assert!(
            std::fs::read(dir.join("got.cdx.json")).unwrap() == large.as_bytes(),
            "{mode}: get returned other bytes than the file"
        );
        if mode == RegistryMode::Plain {
            assert_eq!(sessions_with_data(&reg), 0, "{mode}: a session was left");
        }

        // UTF-16 (with its byte-order mark): what is pushed is the UTF-8 text it transcodes to, so the file's own
        // bytes are not sent beside the validation.
        let utf8 = large_cyclonedx(3, kibaship_sbom::STREAMING_THRESHOLD_BYTES + 1_000_000);
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(utf8.encode_utf16().flat_map(u16::to_le_bytes));
        std::fs::write(dir.join("utf16.cdx.json"), &utf16).unwrap();
        let before = patches(&log());
        let r = run(
            &mut tools.kibaverify(&["sbom", "attach", &image, "--file", "utf16.cdx.json"]),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("{mode}: sbom attach of a large UTF-16 file"),
        );
        assert_eq!(
            patches(&log()),
            before,
            "{mode}: a UTF-16 file was sent as it is"
        );
        assert!(has_blob(&reg, &image, utf8.as_bytes()), "{mode}");
        assert!(!has_blob(&reg, &image, &utf16), "{mode}");

        // UTF-8 with a byte-order mark: sent beside the validation without its mark, which is what is pushed.
        let unmarked = large_cyclonedx(4, kibaship_sbom::STREAMING_THRESHOLD_BYTES + 1_000_000);
        let marked = [b"\xEF\xBB\xBF", unmarked.as_bytes()].concat();
        std::fs::write(dir.join("marked.cdx.json"), &marked).unwrap();
        let before = patches(&log());
        let r = run(
            &mut tools.kibaverify(&["sbom", "attach", &image, "--file", "marked.cdx.json"]),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("{mode}: sbom attach of a large file with a byte-order mark"),
        );
        assert!(
            patches(&log()) > before,
            "{mode}: the marked file was not sent into an upload session"
        );
        assert!(has_blob(&reg, &image, unmarked.as_bytes()), "{mode}");
        assert!(!has_blob(&reg, &image, &marked), "{mode}");

        // Valid, but the signing key cannot be read: refused after the validation, the session cancelled.
        let second = large_cyclonedx(2, kibaship_sbom::STREAMING_THRESHOLD_BYTES + 1_000_000);
        std::fs::write(dir.join("second.cdx.json"), &second).unwrap();
        let (before, deletes_before) = {
            let log = log();
            (
                patches(&log),
                log.lines().filter(|l| l.contains("DELETE")).count(),
            )
        };
        let r = run(
            &mut tools.kibaverify(&[
                "sbom",
                "attach",
                &image,
                "--file",
                "second.cdx.json",
                "--sign",
                "--key",
                "no-such.key",
            ]),
            &mut t,
        );
        assert_code(
            &r,
            2,
            &format!("{mode}: sbom attach --sign with a missing key"),
        );
        assert!(r.stderr.contains("no-such.key"), "{mode}: {}", r.stderr);
        let log = log();
        assert!(
            patches(&log) > before,
            "{mode}: the second file was not sent"
        );
        let deletes = log.lines().filter(|l| l.contains("DELETE")).count();
        assert!(
            deletes > deletes_before,
            "{mode}: the session was not cancelled"
        );
        assert!(
            !has_blob(&reg, &image, second.as_bytes()),
            "{mode}: the refused file became a blob"
        );
        if mode == RegistryMode::Plain {
            assert_eq!(
                sessions_with_data(&reg),
                0,
                "{mode}: the cancelled session holds data"
            );
        }
        let r = run(&mut tools.kibaverify(&["sbom", "list", &image]), &mut t);
        assert_code(&r, 0, &format!("{mode}: sbom list"));
        // The large file, its UTF-16 twin and the marked one; not the refused one.
        assert_eq!(r.stdout.lines().count(), 3, "{mode}: {}", r.stdout);
    }
}
