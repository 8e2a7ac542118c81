//! The admission answer for one image, from the policies that select it and whether each is satisfied: the one
//! definition of the rules that the webhook and `kibaverify verify --policy` both apply.
use crate::model::{ExceptionMatch, Mode};

/// What the webhook answers for one image.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// Every selected policy is satisfied (or only `audit` policies are not, which are only recorded).
    Admit,
    /// A `warn` policy is not satisfied and no `enforce` policy failed: admitted, with a warning.
    AdmitWithWarning,
    /// An `enforce` policy is not satisfied.
    Deny,
    /// No policy selects the image in that namespace: it is not checked.
    NotSelected,
    /// An unexpired exception covers the image: the selected policies are not checked.
    Exception,
}

impl Answer {
    /// The stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Admit => "admit",
            Answer::AdmitWithWarning => "admit-with-warning",
            Answer::Deny => "deny",
            Answer::NotSelected => "not-selected",
            Answer::Exception => "exception",
        }
    }

    /// Whether the image is let in.
    pub fn admits(self) -> bool {
        self != Answer::Deny
    }

    /// The answer for an image, from each selecting policy's mode and whether it is satisfied (in any order), and
    /// the exception that covers the image, if any. Selection comes first: an image no policy selects is
    /// `NotSelected` whatever the exceptions say; an expired exception counts as none.
    pub fn for_image(
        judged: impl IntoIterator<Item = (Mode, bool)>,
        exception: &ExceptionMatch<'_>,
    ) -> Answer {
        let mut selected = false;
        let (mut enforce_failed, mut warn_failed) = (false, false);
        for (mode, satisfied) in judged {
            selected = true;
            if !satisfied {
                match mode {
                    Mode::Enforce => enforce_failed = true,
                    Mode::Warn => warn_failed = true,
                    Mode::Audit => {}
                }
            }
        }
        if !selected {
            Answer::NotSelected
        } else if exception.is_active() {
            Answer::Exception
        } else if enforce_failed {
            Answer::Deny
        } else if warn_failed {
            Answer::AdmitWithWarning
        } else {
            Answer::Admit
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules() {
        let none = ExceptionMatch::None;
        let cases: &[(&[(Mode, bool)], Answer)] = &[
            (&[], Answer::NotSelected),
            (&[(Mode::Enforce, true)], Answer::Admit),
            (&[(Mode::Enforce, false)], Answer::Deny),
            (
                &[(Mode::Warn, false), (Mode::Enforce, true)],
                Answer::AdmitWithWarning,
            ),
            (&[(Mode::Warn, false), (Mode::Enforce, false)], Answer::Deny),
            (&[(Mode::Audit, false)], Answer::Admit),
            (&[(Mode::Audit, false), (Mode::Warn, true)], Answer::Admit),
        ];
        for (judged, want) in cases {
            assert_eq!(
                Answer::for_image(judged.iter().copied(), &none),
                *want,
                "{judged:?}"
            );
        }
        assert!(!Answer::Deny.admits());
        assert!(Answer::AdmitWithWarning.admits());
    }

    #[test]
    fn an_active_exception_wins_over_failures_but_not_over_selection() {
        let set = crate::PolicySet::parse(
            "t.yaml",
            "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: p\n    images: [\"**\"]\n    authorities:\n      - name: k\n        key: |\n          -----BEGIN PUBLIC KEY-----\n          MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDnuWp3YHjzLqQcwBS+oAaRlkR+UK\n          507IZjxwNV4MDg3sokWdpgeQPeJFgLAEe7ibXTEEoNAHrjIxmPDzWHBUPQ==\n          -----END PUBLIC KEY-----\nexceptions:\n  - images: [\"**\"]\n    namespaces: [\"*\"]\n    owner: o@example.com\n    expires: 2030-01-01T00:00:00Z\n    reason: r\n",
        )
        .expect("parses");
        let active = set.exception_for("ns", "registry.example/app", 0);
        assert!(active.is_active());
        assert_eq!(
            Answer::for_image([(Mode::Enforce, false)], &active),
            Answer::Exception
        );
        assert_eq!(Answer::for_image([], &active), Answer::NotSelected);
        let expired = set.exception_for("ns", "registry.example/app", 2_000_000_000);
        assert!(matches!(expired, ExceptionMatch::Expired(_)));
        assert_eq!(
            Answer::for_image([(Mode::Enforce, false)], &expired),
            Answer::Deny
        );
    }
}
