//! Package URLs, path globs and pinned image references given to the gate.
#![no_main]
use kibaship_gate::attestation::PinnedImage;
use kibaship_gate::{PackageUrl, PathGlob};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(purl) = PackageUrl::parse(text) {
        let _ = purl.matches(&purl);
    }
    if let Ok(glob) = PathGlob::parse(text) {
        let _ = glob.matches(text);
        let _ = glob.matches("usr/lib/python3/dist-packages/a/b/c.py");
    }
    let _ = PinnedImage::parse(text);
});
