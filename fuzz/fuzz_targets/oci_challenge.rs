//! Registry response headers: `WWW-Authenticate`, `Link` and `Retry-After`.
#![no_main]
use kibaship_oci::challenge::{next_link, parse_challenge};
use kibaship_oci::retry::parse_retry_after;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_challenge(header);
    let _ = next_link(header);
    let _ = parse_retry_after(
        header,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_748_736_000),
    );
});
