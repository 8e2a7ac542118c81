//! Package URLs (`pkg:type/namespace/name@version?qualifiers#subpath`) and trivy's matching rule.
//!
//! A constraint matches a package when type, namespace and name are equal, the constraint's
//! version (if any) equals the package's, its subpath (if any) equals the package's, and every
//! qualifier of the constraint is present in the package with the same value.

/// A parsed package URL; components are percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageUrl {
    kind: String,
    namespace: String,
    name: String,
    version: String,
    qualifiers: Vec<(String, String)>,
    subpath: String,
}

impl PackageUrl {
    /// Parses a package URL; the error says what is missing.
    pub fn parse(text: &str) -> Result<PackageUrl, String> {
        let rest = text
            .strip_prefix("pkg:")
            .ok_or_else(|| format!("package URL `{text}` does not start with `pkg:`"))?;
        let rest = rest.trim_start_matches('/');
        let (rest, subpath) = match rest.split_once('#') {
            Some((rest, subpath)) => (rest, subpath.trim_matches('/')),
            None => (rest, ""),
        };
        let (rest, qualifier_text) = match rest.split_once('?') {
            Some((rest, q)) => (rest, q),
            None => (rest, ""),
        };
        let (kind, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("package URL `{text}` has no `type/name`"))?;
        if kind.is_empty() {
            return Err(format!("package URL `{text}` has an empty type"));
        }
        let path = path.trim_end_matches('/');
        let (namespace, name_version) = match path.rsplit_once('/') {
            Some((namespace, last)) => (namespace, last),
            None => ("", path),
        };
        let (name, version) = match name_version.rsplit_once('@') {
            Some((name, version)) => (name, version),
            None => (name_version, ""),
        };
        if name.is_empty() {
            return Err(format!("package URL `{text}` has an empty name"));
        }
        let mut qualifiers = Vec::new();
        for pair in qualifier_text.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                format!("package URL `{text}`: qualifier `{pair}` is not `key=value`")
            })?;
            qualifiers.push((key.to_ascii_lowercase(), decode(value)));
        }
        Ok(PackageUrl {
            kind: kind.to_ascii_lowercase(),
            namespace: namespace
                .split('/')
                .map(decode)
                .collect::<Vec<_>>()
                .join("/"),
            name: decode(name),
            version: decode(version),
            qualifiers,
            subpath: decode(subpath),
        })
    }

    /// Whether `target` satisfies this constraint (trivy's `PackageURL.Match`).
    pub fn matches(&self, target: &PackageUrl) -> bool {
        if self.kind != target.kind
            || self.namespace != target.namespace
            || self.name != target.name
        {
            return false;
        }
        if !self.version.is_empty() && self.version != target.version {
            return false;
        }
        if !self.subpath.is_empty() && self.subpath != target.subpath {
            return false;
        }
        self.qualifiers.iter().all(|(key, value)| {
            target
                .qualifiers
                .iter()
                .any(|(k, v)| k == key && v == value)
        })
    }
}

/// Percent-decodes `text`; malformed escapes are kept as they are.
fn decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::PackageUrl;

    fn purl(text: &str) -> PackageUrl {
        PackageUrl::parse(text).expect("valid purl")
    }

    #[test]
    fn constraint_without_version_matches_any_version() {
        let constraint = purl("pkg:golang/github.com/aquasecurity/bar");
        assert!(constraint.matches(&purl("pkg:golang/github.com/aquasecurity/bar@1.2.3")));
        assert!(!constraint.matches(&purl("pkg:golang/github.com/aquasecurity/baz@1.2.3")));
    }

    #[test]
    fn constraint_version_must_equal() {
        let constraint = purl("pkg:golang/github.com/aquasecurity/aaa@9.9.9");
        assert!(!constraint.matches(&purl("pkg:golang/github.com/aquasecurity/aaa@1.0.0")));
        assert!(constraint.matches(&purl("pkg:golang/github.com/aquasecurity/aaa@9.9.9")));
    }

    #[test]
    fn constraint_qualifiers_must_be_present() {
        let constraint = purl("pkg:rpm/centos/bash?arch=x86_64");
        assert!(constraint.matches(&purl(
            "pkg:rpm/centos/bash@4.2.46-31.el7?arch=x86_64&distro=centos-7.6.1810"
        )));
        assert!(!constraint.matches(&purl("pkg:rpm/centos/bash@4.2.46-31.el7?arch=aarch64")));
        assert!(!constraint.matches(&purl("pkg:rpm/centos/bash@4.2.46-31.el7")));
    }

    #[test]
    fn percent_encoded_scope_matches_decoded() {
        let constraint = purl("pkg:npm/%40babel/traverse");
        assert!(constraint.matches(&purl("pkg:npm/@babel/traverse@7.0.0")));
    }

    #[test]
    fn malformed_purls_are_errors() {
        assert!(PackageUrl::parse("npm/foo").is_err());
        assert!(PackageUrl::parse("pkg:npm").is_err());
        assert!(PackageUrl::parse("pkg:npm/foo?bad").is_err());
    }
}
