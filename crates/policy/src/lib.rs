//! Admission policy.
