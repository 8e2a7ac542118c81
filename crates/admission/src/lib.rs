//! AdmissionReview parsing.
