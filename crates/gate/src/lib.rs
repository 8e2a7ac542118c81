//! Vulnerability gate over trivy JSON reports: policy, exceptions, verdicts
