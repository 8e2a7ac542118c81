//! Tekton task parameters: platforms, build args, secret names, image names, commits, railpack version.
#![no_main]
use kibaship_step::buildctl::{parse_build_arg, parse_platforms, validate_railpack_version};
use kibaship_step::image::{ImageName, validate_commit};
use kibaship_step::secrets::SecretName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_platforms(text);
    let _ = parse_build_arg(text);
    let _ = SecretName::parse(text);
    let _ = validate_commit(text);
    let _ = validate_railpack_version(text);
    let mut parts = text.splitn(3, '\n');
    let (registry, repository, tag) = (parts.next(), parts.next(), parts.next());
    if let (Some(r), Some(p), Some(t)) = (registry, repository, tag)
        && let Ok(name) = ImageName::new(r, p, t)
    {
        let _ =
            name.pinned("sha256:0000000000000000000000000000000000000000000000000000000000000000");
        let _ = name.with_tag("latest");
    }
});
