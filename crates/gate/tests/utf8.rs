//! Every byte of a report is checked to be UTF-8, also in the fields the gate skips (serde_json
//! checks only the strings it keeps), by both readers and whatever the read sizes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_gate::{Policy, Report, TrivyGate, stream};

/// A report with `description` as the (skipped) `Description` of its one vulnerability.
fn report(description: &[u8]) -> Vec<u8> {
    let mut bytes = br#"{"SchemaVersion":2,"ArtifactName":"a","Results":[{"Target":"t","Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"p","Severity":"HIGH","Description":""#.to_vec();
    bytes.extend_from_slice(description);
    bytes.extend_from_slice(br#"","References":["x"]}]}],"Unknown":"ok"}"#);
    bytes
}

/// Reads with `read` returning at most `step` bytes at a time, so characters are cut.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.bytes.len());
        let (head, tail) = self.bytes.split_at(n);
        out.get_mut(..n).unwrap().copy_from_slice(head);
        self.bytes = tail;
        Ok(n)
    }
}

fn streamed(bytes: &[u8], step: usize) -> Result<u64, String> {
    let policy = Policy::from_yaml("version: 1\nfail-on-severity: critical\n", "p.yaml").unwrap();
    let gate = TrivyGate::new(policy, Vec::new(), time::OffsetDateTime::UNIX_EPOCH).unwrap();
    let mut evaluation = gate.start();
    stream::read_report_in_chunks(Trickle { bytes, step }, 1, |r| evaluation.add_result(r))
        .map_err(|e| e.to_string())?;
    let verdict = evaluation.finish(None, None);
    Ok(verdict.counts.reported.total())
}

#[test]
fn invalid_utf8_in_a_skipped_field_is_refused_with_its_offset() {
    let bytes = report(b"bad \xff byte");
    let offset = bytes.iter().position(|&b| b == 0xff).unwrap();
    let expected = format!("trivy report: byte {offset}: invalid UTF-8");
    let err = Report::from_slice(&bytes).unwrap_err().to_string();
    assert!(err.starts_with(&expected), "{err}");
    for step in [1, 2, 3, 7, 4096] {
        let err = streamed(&bytes, step).unwrap_err();
        assert!(err.starts_with(&expected), "step {step}: {err}");
    }
    // An overlong encoding, a lone continuation byte and a surrogate are refused too.
    for bad in [&b"\xc0\xaf"[..], b"\x80", b"\xed\xa0\x80"] {
        assert!(Report::from_slice(&report(bad)).is_err());
        assert!(streamed(&report(bad), 2).is_err());
    }
}

#[test]
fn characters_cut_between_reads_are_read() {
    let bytes = report("é € 😀 end".as_bytes());
    assert_eq!(Report::from_slice(&bytes).unwrap().vulnerability_count(), 1);
    for step in 1..=9 {
        assert_eq!(streamed(&bytes, step), Ok(1), "step {step}");
    }
}

#[test]
fn a_character_cut_by_the_end_of_the_input_is_refused() {
    // The first two bytes of `€` after the last `}`.
    let mut bytes = report(b"x");
    bytes.extend_from_slice(b"\n\xe2\x82");
    let offset = bytes.len() - 2;
    let expected = format!("trivy report: byte {offset}: ");
    for step in [1, 2, 4096] {
        let err = streamed(&bytes, step).unwrap_err();
        assert!(err.starts_with(&expected), "step {step}: {err}");
    }
}
