//! `PolicySet::parse` (admission policies from ConfigMaps anyone with edit rights there can write) and what the
//! webhook asks of a parsed set (`select`, `exception_for`): never a panic; errors name a place in the file and
//! carry no raw control character; an image a policy selects is selected again (the answer does not change).
#![no_main]
use std::collections::BTreeMap;

use kibaship_policy::{NamespaceInfo, PolicySet};
use libfuzzer_sys::fuzz_target;

const IMAGES: [&str; 6] = [
    "registry.example:5000/team/app:v1",
    "registry.example:5000/team/app@sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e",
    "alpine",
    "ghcr.io/org/ä日本/app:latest",
    "docker.io/library/nginx:1.27",
    "not a reference",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PolicySet::parse("p.yaml", text) {
        Ok(set) => {
            let labels: BTreeMap<String, String> =
                [("kibaship.io/verify".to_string(), "enforce".to_string())]
                    .into_iter()
                    .collect();
            for namespace in [
                NamespaceInfo::new("prod", &labels),
                NamespaceInfo::without_labels("dev"),
            ] {
                for image in IMAGES {
                    let selected: Vec<&str> = set
                        .select(&namespace, image)
                        .iter()
                        .map(|p| p.name())
                        .collect();
                    let again: Vec<&str> = set
                        .select(&namespace, image)
                        .iter()
                        .map(|p| p.name())
                        .collect();
                    assert_eq!(selected, again);
                    let _ = set.exception_for("prod", image, 1_800_000_000);
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors.errors() {
                assert!(e.line >= 1 && e.column >= 1, "{e}");
                let shown = e.to_string();
                assert!(shown.starts_with("p.yaml:"), "{shown}");
                assert!(
                    !shown.chars().any(char::is_control),
                    "control character in {shown:?}"
                );
            }
        }
    }
});
