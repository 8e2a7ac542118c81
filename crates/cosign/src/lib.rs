//! cosign's signature layouts as they sit in an OCI registry.
//!
//! - [`legacy`]: the `sha256-<hex>.sig` and `sha256-<hex>.att` tags cosign (and every cluster verifier still in
//!   use) reads: one OCI manifest whose layers are signed payloads, each carrying its signature, certificate,
//!   chain and Rekor bundle in annotations. Pure: building and reading manifests and layers, with bounds on
//!   everything an attacker could inflate.
//! - [`check`]: checking one fetched layer (payload digest, signature, certificate identity, Rekor SET through
//!   `kibaship-sigstore`). Pure.
//! - [`bundle_layout`]: cosign v3's layout, a Sigstore bundle v0.3 attached as an OCI 1.1 referrer. Pure.
//! - [`keyless`]: keyless signing (an OIDC token, an ephemeral key, a Fulcio certificate, a Rekor v2 entry, an
//!   RFC 3161 timestamp) into a Sigstore bundle v0.3, over the clients [`fulcio`], [`rekor_v2`] and [`tsa`]
//!   (async, reqwest), with services from a [`signing_config`] and the token read by [`identity_token`].
//! - [`key_log`]: key-based signatures entered in Rekor (v1 with its SET for the legacy layout, v2 with a TSA
//!   timestamp for bundles), as `cosign sign --key` logs them.
//! - [`rekor_v1`]: the Rekor v1 client whose signed entry timestamps keyless legacy layers carry.
//! - [`registry`]: signing images in a registry, and reading their signatures (async, over `kibaship-oci`'s
//!   client).
//! - [`referrer_selection`]: which of an image's signature referrers are checked when there are more than the
//!   bound, by what their descriptors declare rather than the registry's order. Pure.
//! - [`predicate`]: checks of attestations' in-toto predicates ([`PredicateCheck`]: a JSON pointer and a
//!   [`PredicateCondition`]) that a policy may require.
//! - [`ImageVerifier`]: the one verification API. `verify(reference, policy, now)` returns a [`Verdict`] whose
//!   `Verified` side only the verifier can construct.

pub mod attest;
pub mod blob;
pub mod bundle_layout;
pub mod check;
mod fingerprint;
pub mod fulcio;
pub mod identity_token;
mod image_verifier;
pub mod key_log;
pub mod keyless;
pub mod legacy;
pub mod predicate;
pub mod referrer_selection;
pub mod registry;
pub mod rekor_v1;
pub mod rekor_v2;
mod service_http;
pub mod sign_image;
pub mod signing_config;
pub mod tsa;

pub use check::{Accepted, Hint, IdentityMismatch, ReasonCode, Rejected, VerifyOptions};
pub use image_verifier::{
    ImagePolicy, ImagePolicyBuilder, ImagePolicyError, ImageVerifier, NotVerified, Verdict,
    VerifiedImage,
};
pub use legacy::{LayerKind, LayoutError, RekorBundle, SignatureLayer};
pub use predicate::{
    PointerError, PredicateCheck, PredicateCondition, PredicateFailure, check_predicate,
};
pub use referrer_selection::ReferrerLimitHit;
pub use registry::{
    CosignError, ImageReport, KeylessSigned, Layout, LegacyKeylessSigned, LegacyStore, Outcome,
    SignatureOutcome, SignedBundle, SignedImage, sign_bundle, sign_bundle_keyless, sign_legacy,
    sign_legacy_keyless,
};
pub use sign_image::{ImageSigner, LayoutSignError, Layouts, LoadedSigner, Signed, sign_image};
