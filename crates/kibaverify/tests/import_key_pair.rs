//! `kibaverify import-key-pair` against the real `cosign import-key-pair` (v3.1.3 peer): the same PEM keys
//! (generated here with the openssl CLI) imported by both give the same public key and files each tool reads;
//! what cosign refuses we refuse with its reason, writing nothing; keys imported by either tool sign with the
//! other and verify with both, for P-256, P-384, P-521 and RSA.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use kibaship_sign::SigningKey;
use kibaship_testsupport::registry::RegistryMode;

mod support;
use support::{
    Tools, assert_code, assert_exit_with_message, assert_not_leaked, on_terminal,
    registry_with_fixtures, run_logged as run,
};

/// Planted in COSIGN_PASSWORD; must never appear in any output.
const PASSWORD: &str = "planted-import-pw-5c21e8";

/// Writes a fresh private key to `dir/name` with `openssl <command> -out name <options>` (`genrsa` wants its
/// size last).
fn openssl(dir: &Path, name: &str, args: &[&str]) {
    let (command, options) = args.split_first().expect("an openssl command");
    let out = Command::new("openssl")
        .arg(command)
        .args(["-out", name])
        .args(options)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Keys cosign imports, each in the encoding named: (file, openssl arguments).
const ACCEPTED: &[(&str, &[&str])] = &[
    (
        "p256-sec1.pem",
        &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
    ),
    (
        "p384-pkcs8.pem",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
    ),
    (
        "p521-sec1.pem",
        &["ecparam", "-name", "secp521r1", "-genkey", "-noout"],
    ),
    ("rsa2048-pkcs1.pem", &["genrsa", "-traditional", "2048"]),
    (
        "rsa3072-pkcs8.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
        ],
    ),
];

/// Keys cosign refuses: (file, openssl arguments, the reason both tools give).
const REFUSED: &[(&str, &[&str], &str)] = &[
    (
        "p224-pkcs8.pem",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-224",
        ],
        "error validating ecdsa key: ECDSA curve P-224 not allowed",
    ),
    (
        "p224-sec1.pem",
        &["ecparam", "-name", "secp224r1", "-genkey", "-noout"],
        "error validating ecdsa key: ECDSA curve P-224 not allowed",
    ),
    (
        "secp256k1-sec1.pem",
        &["ecparam", "-name", "secp256k1", "-genkey", "-noout"],
        "error parsing ecdsa private key",
    ),
    (
        "rsa1024-pkcs8.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ],
        "error validating rsa key: key size not supported: 1024",
    ),
    (
        "rsa2048-e3.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-pkeyopt",
            "rsa_keygen_pubexp:3",
        ],
        "error validating rsa key: key exponent must be 65537",
    ),
    (
        "p256-encrypted-pkcs8.pem",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes256",
            "-pass",
            "pass:openssl-pw",
        ],
        "unsupported private key",
    ),
    (
        "rsa2048-encrypted-pkcs1.pem",
        &[
            "genrsa",
            "-traditional",
            "-aes256",
            "-passout",
            "pass:openssl-pw",
            "2048",
        ],
        "error parsing rsa private key",
    ),
];

/// Writes an RSA 2048 PKCS#1 key (argv[1]) whose primes are adjacent (valid otherwise: `openssl rsa -check`
/// accepts it), which no key generator makes but Go's crypto/rsa refuses when cosign parses it.
const CLOSE_PRIMES_KEY_PY: &str = r#"
import base64, random, sys
def prime(n, rounds=32):
    if any(n % s == 0 for s in (2, 3, 5, 7, 11, 13)): return False
    d, s = n - 1, 0
    while d % 2 == 0: d, s = d // 2, s + 1
    rng = random.Random(n)
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1): continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1: break
        else: return False
    return True
def next_prime(n):
    n |= 1
    while not prime(n): n += 2
    return n
def der_len(n):
    if n < 128: return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b
def der_int(v):
    b = v.to_bytes(v.bit_length() // 8 + 1, "big")
    return b"\x02" + der_len(len(b)) + b
e = 65537
p = next_prime((3 << 1022) + 12345)
q = next_prime(p + 2)
while (p - 1) % e == 0 or (q - 1) % e == 0: q = next_prime(q + 2)
d = pow(e, -1, (p - 1) * (q - 1))
body = b"".join(der_int(v) for v in (0, p * q, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p)))
b64 = base64.b64encode(b"\x30" + der_len(len(body)) + body).decode()
lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
open(sys.argv[1], "w").write("-----BEGIN RSA PRIVATE KEY-----\n" + lines + "\n-----END RSA PRIVATE KEY-----\n")
"#;

/// cosign verifies a key's signatures with SHA-256 unless told otherwise, although it signs with P-384 and
/// P-521 keys over SHA-384 and SHA-512: its own signatures by those keys need this flag too.
fn cosign_digest_algorithm(file: &str) -> &'static str {
    match file.split('-').next() {
        Some("p384") => "sha384",
        Some("p521") => "sha512",
        _ => "sha256",
    }
}

/// `tool import-key-pair --key file --output-key-prefix prefix`.
fn import(tools: &Tools<'_>, cosign: bool, file: &str, prefix: &str) -> Command {
    let args = [
        "import-key-pair",
        "--key",
        file,
        "--output-key-prefix",
        prefix,
    ];
    if cosign {
        tools.cosign(&args)
    } else {
        tools.kibaverify_without_registry(&args)
    }
}

/// Writes each `(file, openssl arguments)` key, generating them concurrently (RSA generation takes seconds).
fn openssl_all(dir: &Path, keys: &[(String, &[&str])]) {
    std::thread::scope(|scope| {
        for (file, args) in keys {
            scope.spawn(move || openssl(dir, file, args));
        }
    });
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn imports_what_cosign_imports_and_refuses_what_it_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::without_registry(dir, PASSWORD);
    let mut t = String::new();
    let keys: Vec<(String, &[&str])> = ACCEPTED
        .iter()
        .copied()
        .chain(REFUSED.iter().map(|(file, args, _)| (*file, *args)))
        .chain([("ed25519.pem", &["genpkey", "-algorithm", "ED25519"][..])])
        .map(|(file, args)| (file.to_string(), args))
        .collect();
    openssl_all(dir, &keys);

    for (file, _) in ACCEPTED {
        let ours = format!("ours-{file}");
        let theirs = format!("cosign-{file}");
        let r = run(&mut import(&tools, false, file, &ours), &mut t);
        assert_code(&r, 0, &format!("kibaverify import-key-pair {file}"));
        let r = run(&mut import(&tools, true, file, &theirs), &mut t);
        assert_code(&r, 0, &format!("cosign import-key-pair {file}"));

        // The same public key, byte for byte; each tool's private key file decrypts to it.
        let public = read(dir, &format!("{ours}.pub"));
        assert_eq!(public, read(dir, &format!("{theirs}.pub")), "{file}");
        let ours_key = read(dir, &format!("{ours}.key"));
        assert!(
            ours_key.starts_with(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
            "{file}"
        );
        for key_file in [&ours_key, &read(dir, &format!("{theirs}.key"))] {
            let key = SigningKey::from_encrypted_pem(key_file, PASSWORD.as_bytes())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(key.public_key_pem().unwrap().as_bytes(), public, "{file}");
        }
        let mode = std::fs::metadata(dir.join(format!("{ours}.key")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }

    for (file, _, reason) in REFUSED {
        let theirs = run(&mut import(&tools, true, file, "refused-cosign"), &mut t);
        assert_exit_with_message(&theirs, 1, reason);
        let ours = run(&mut import(&tools, false, file, "refused-ours"), &mut t);
        assert_exit_with_message(&ours, 2, reason);
        assert!(
            ours.stderr.contains(file),
            "names the file: {}",
            ours.stderr
        );
        assert!(!dir.join("refused-ours.key").exists(), "{file}");
        assert!(!dir.join("refused-ours.pub").exists(), "{file}");
    }

    // Primes too close together: refused when Go parses the key, before cosign's key policy; by us the same.
    let out = Command::new("python3")
        .args(["-c", CLOSE_PRIMES_KEY_PY, "close-primes.pem"])
        .current_dir(dir)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reason = "error parsing rsa private key: crypto/rsa: |p - q| too small";
    let theirs = run(
        &mut import(&tools, true, "close-primes.pem", "close-cosign"),
        &mut t,
    );
    assert_exit_with_message(&theirs, 1, reason);
    let ours = run(
        &mut import(&tools, false, "close-primes.pem", "close-ours"),
        &mut t,
    );
    assert_exit_with_message(&ours, 2, reason);
    assert!(!dir.join("close-ours.key").exists());

    // Ed25519: cosign imports it, but signs with it as Ed25519ph, which kibaverify cannot: refused, by reason.
    let r = run(&mut import(&tools, false, "ed25519.pem", "ed"), &mut t);
    assert_exit_with_message(&r, 2, "Ed25519ph");
    assert!(!dir.join("ed.key").exists());

    // An existing key is not overwritten without --yes (no terminal to ask on); with it, it is.
    let file = ACCEPTED[0].0;
    let prefix = format!("ours-{file}");
    let before = read(dir, &format!("{prefix}.key"));
    let r = run(&mut import(&tools, false, file, &prefix), &mut t);
    assert_exit_with_message(&r, 2, "already exists (pass --yes to overwrite it)");
    assert_eq!(read(dir, &format!("{prefix}.key")), before);
    let r = run(import(&tools, false, file, &prefix).arg("--yes"), &mut t);
    assert_code(&r, 0, "import-key-pair --yes");
    let after = read(dir, &format!("{prefix}.key"));
    assert_ne!(after, before, "a new salt and nonce each time");
    SigningKey::from_encrypted_pem(&after, PASSWORD.as_bytes()).unwrap();

    // Without COSIGN_PASSWORD and without a terminal: refused, nothing written.
    let r = run(
        import(&tools, false, file, "no-password").env_remove("COSIGN_PASSWORD"),
        &mut t,
    );
    assert_exit_with_message(&r, 2, "COSIGN_PASSWORD");
    assert!(!dir.join("no-password.key").exists());

    assert_not_leaked(&t, PASSWORD, "import-key-pair output");
}

#[test]
fn overwriting_asks_on_a_terminal_as_cosign_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    openssl(dir, "p256.pem", ACCEPTED[0].1);
    std::fs::write(dir.join("existing.key"), "kept").unwrap();
    let args = "import-key-pair --key p256.pem --output-key-prefix existing";

    let declined = on_terminal(dir, args, &["n"]);
    let shown = String::from_utf8_lossy(&declined.stdout);
    assert!(!declined.status.success(), "{shown}");
    assert!(
        shown.contains("Are you sure you would like to continue? [y/N]"),
        "{shown}"
    );
    assert_eq!(std::fs::read(dir.join("existing.key")).unwrap(), b"kept");
    assert!(!dir.join("existing.pub").exists());

    let confirmed = on_terminal(dir, args, &["y", "typed-import-pw", "typed-import-pw"]);
    let shown = String::from_utf8_lossy(&confirmed.stdout);
    assert!(confirmed.status.success(), "{shown}");
    assert!(!shown.contains("typed-import-pw"), "echoed: {shown}");
    SigningKey::from_encrypted_pem(&read(dir, "existing.key"), b"typed-import-pw").unwrap();
}

#[test]
fn imported_keys_sign_with_the_other_tool_and_verify_with_both() {
    let reg = registry_with_fixtures(RegistryMode::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::new(dir, &reg, Some(PASSWORD));
    let mut t = String::new();
    let image = tools.image_by_digest(&tools.fixture("app"), &mut t);

    // RSA 3072 adds nothing here that RSA 2048 does not (the same signing code), only seconds of key generation.
    let kinds: Vec<_> = ACCEPTED
        .iter()
        .filter(|(file, _)| !file.starts_with("rsa3072"))
        .collect();
    // Two keys of each kind, so that each direction's signature verifies only with its own key.
    let keys: Vec<(String, &[&str])> = kinds
        .iter()
        .flat_map(|(file, args)| {
            [
                (format!("cosign-imports-{file}"), *args),
                (format!("we-import-{file}"), *args),
            ]
        })
        .chain([("unused.pem".to_string(), ACCEPTED[0].1)])
        .collect();
    openssl_all(dir, &keys);

    for (file, _) in kinds {
        let for_cosign = format!("cosign-imports-{file}");
        let for_us = format!("we-import-{file}");

        // cosign imports, kibaverify signs (both layouts), cosign and kibaverify verify.
        let r = run(&mut import(&tools, true, &for_cosign, "by-cosign"), &mut t);
        assert_code(&r, 0, &format!("cosign import-key-pair {file}"));
        let r = run(
            &mut tools.kibaverify(&["sign", &image, "--key", "by-cosign.key", "--layout", "both"]),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("kibaverify sign with cosign's import of {file}"),
        );
        let digest_algorithm = cosign_digest_algorithm(file);
        let r = run(
            tools
                .cosign_verify_with_key("by-cosign.pub", &image)
                .args(["--signature-digest-algorithm", digest_algorithm]),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign verify of our signature by {file}"));
        let r = run(
            &mut tools.verify_with_key("verify", &image, "by-cosign.pub", &[]),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("kibaverify verify of our signature by {file}"),
        );

        // kibaverify imports, cosign signs (its v3 bundle), kibaverify and cosign verify.
        let r = run(&mut import(&tools, false, &for_us, "by-us"), &mut t);
        assert_code(&r, 0, &format!("kibaverify import-key-pair {file}"));
        let r = run(
            &mut tools.cosign_sign_with_key("by-us.key", false, &image),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign sign with our import of {file}"));
        let r = run(
            &mut tools.verify_with_key("verify", &image, "by-us.pub", &[]),
            &mut t,
        );
        assert_code(
            &r,
            0,
            &format!("kibaverify verify of cosign's signature by {file}"),
        );
        let r = run(
            tools
                .cosign_verify_with_key("by-us.pub", &image)
                .args(["--signature-digest-algorithm", digest_algorithm]),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign verify of its signature by {file}"));

        for name in ["by-cosign.key", "by-cosign.pub", "by-us.key", "by-us.pub"] {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
    }

    // A key that signed nothing here verifies nothing: the checks above depend on the key.
    let r = run(&mut import(&tools, false, "unused.pem", "unused"), &mut t);
    assert_code(&r, 0, "import of an unused key");
    let r = run(
        &mut tools.verify_with_key("verify", &image, "unused.pub", &[]),
        &mut t,
    );
    assert_code(&r, 1, "kibaverify verify with a key that signed nothing");

    assert_not_leaked(&t, PASSWORD, "sign and verify output");
}
