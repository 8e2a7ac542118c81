//! `TestRegistry::start_with`: a registry on a local address other than 127.0.0.1 (the cluster harness puts one
//! on the node address so that Pods reach it). 127.0.0.2 stands in for it here: every 127.0.0.0/8 address is
//! local on Linux, so the test needs no bridge.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::{IpAddr, Ipv4Addr, TcpStream};

use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

const OTHER_LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::test]
async fn plain_registry_listens_on_the_given_address_only() {
    let parent = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start_with(RegistryMode::Plain, parent.path(), OTHER_LOOPBACK).unwrap();
    let host = reg.host();
    assert!(host.starts_with("127.0.0.2:"), "{host}");
    assert_eq!(reg.base_url(), format!("http://{host}"));
    assert!(reg.work_dir().starts_with(parent.path()));

    let response = reqwest::get(format!("{}/v2/", reg.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // Not on 127.0.0.1 (nor on every address): the same port there refuses the connection.
    let port = host.rsplit_once(':').unwrap().1;
    let refused = TcpStream::connect(format!("127.0.0.1:{port}"));
    assert!(refused.is_err(), "127.0.0.1:{port} answered");
}

#[test]
fn the_unspecified_address_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    for ip in [
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    ] {
        let err = TestRegistry::start_with(RegistryMode::Plain, parent.path(), ip).unwrap_err();
        assert!(
            err.to_string().contains("never on all of them"),
            "{ip}: {err}"
        );
    }
}

#[test]
fn tls_modes_stay_on_127_0_0_1() {
    let parent = tempfile::tempdir().unwrap();
    for mode in [RegistryMode::BasicTls, RegistryMode::TokenTls] {
        let err = TestRegistry::start_with(mode, parent.path(), OTHER_LOOPBACK).unwrap_err();
        assert!(
            err.to_string().contains("127.0.0.1 and localhost only"),
            "{mode}: {err}"
        );
    }
}

#[test]
fn an_address_the_host_does_not_have_is_refused_with_its_reason() {
    let parent = tempfile::tempdir().unwrap();
    // TEST-NET-1 (RFC 5737): never assigned to a host.
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let err = TestRegistry::start_with(RegistryMode::Plain, parent.path(), ip).unwrap_err();
    assert!(
        err.to_string()
            .contains("is 192.0.2.1 an address of this host?"),
        "{err}"
    );
}
