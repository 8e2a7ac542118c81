//! OIDC identity tokens given to keyless signing: `IdentityToken::parse`.
#![no_main]
use kibaship_cosign::identity_token::IdentityToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = IdentityToken::parse(raw, 1_748_736_000) {
        let _ = token.challenge_subject();
        let _ = token.issuer();
    }
});
