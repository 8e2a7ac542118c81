//! cosign's byte-exact payload golden (`TestObsoletePayload`).
use std::collections::BTreeMap;

use kibaship_sign::SimpleSigningPayload;

#[test]
fn payload_matches_cosigns_golden_bytes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/cosign/simple-signing/obsolete-payload.golden.json"
    );
    let golden = std::fs::read(path).unwrap();
    let ours = SimpleSigningPayload::new(
        "index.docker.io/namespace/image",
        "sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec",
        BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(ours.to_bytes()).unwrap(),
        String::from_utf8(golden.clone()).unwrap().trim_end()
    );
    assert_eq!(SimpleSigningPayload::parse(&golden).unwrap(), ours);
}
