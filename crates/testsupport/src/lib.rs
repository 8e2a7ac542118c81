//! Test support: real registry harness, token server, fault-injecting proxy, fixtures
