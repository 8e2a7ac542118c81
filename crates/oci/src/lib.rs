//! OCI registry client: references, digests, auth, retries, referrers
