//! Offline Sigstore bundle verification and identity policy
