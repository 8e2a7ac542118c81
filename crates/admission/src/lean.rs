//! A lean, tolerant reading of the few AdmissionReview fields we use.
//!
//! Every field is read as a [`Loose`] value: absent, the shape we expected, or *what it was instead*. A value
//! of the wrong type is therefore not a parse error: it is recorded, and the caller reports it with its
//! JSON pointer (serde's own errors only carry a line and column). Everything we do not read is skipped by
//! serde_json without being built (`IgnoredAny`), so a large object costs the few strings we keep, not a
//! `serde_json::Value` tree many times the size of the body; skipping is iterative, so deep nesting in
//! skipped parts cannot exhaust the stack either. The structures below have a fixed depth (no type contains
//! itself), so serde_json's recursion limit is never the reason a review fails.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::review::{MAX_IMAGES, MAX_PULL_SECRETS};

/// The JSON type a value turned out to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Found {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Found::Null => "null",
            Found::Bool => "a boolean",
            Found::Number => "a number",
            Found::String => "a string",
            Found::Array => "an array",
            Found::Object => "an object",
        }
    }
}

/// A field as it was found: absent, of the expected shape, or something else (`null` included).
#[derive(Debug, Default)]
pub(crate) enum Loose<T> {
    #[default]
    Absent,
    Present(T),
    Other(Found),
}

impl<T> Loose<T> {
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Loose::Absent)
    }
}

/// A shape a JSON value can be read into. Each method returns `None` when the value has another shape;
/// the default methods skip what they are given.
pub(crate) trait Shape: Sized {
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn from_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// Which elements of an [`Items`] list matter.
pub(crate) trait Relevant: Sized {
    /// Whether `element` is counted and kept.
    fn matters(element: &Loose<Self>) -> bool;
}

impl Shape for String {
    fn from_str(s: &str) -> Option<Self> {
        Some(s.to_string())
    }
}

impl Shape for bool {
    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

impl<'de, T: Shape> de::Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor(PhantomData))
    }
}

struct LooseVisitor<T>(PhantomData<T>);

fn found<T>(value: Option<T>, otherwise: Found) -> Loose<T> {
    match value {
        Some(v) => Loose::Present(v),
        None => Loose::Other(otherwise),
    }
}

impl<'de, T: Shape> Visitor<'de> for LooseVisitor<T> {
    type Value = Loose<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(found(T::from_bool(v), Found::Bool))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Loose::Other(Found::Number))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Loose::Other(Found::Number))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Loose::Other(Found::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(found(T::from_str(v), Found::String))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other(Found::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other(Found::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(found(T::from_map(map)?, Found::Object))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(found(T::from_seq(seq)?, Found::Array))
    }
}

/// A JSON array of which only the elements that matter are kept, at most `KEEP` of them, each with its
/// index; `relevant` counts every element that matters, kept or not. The cap bounds memory however long
/// the array is, and the count still says how far over a limit it went.
#[derive(Debug)]
pub(crate) struct Items<T, const KEEP: usize> {
    pub(crate) kept: Vec<(usize, Loose<T>)>,
    pub(crate) relevant: usize,
}

impl<T: Shape + Relevant, const KEEP: usize> Shape for Items<T, KEEP> {
    fn from_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        let mut kept = Vec::new();
        let mut relevant = 0usize;
        let mut index = 0usize;
        while let Some(element) = seq.next_element::<Loose<T>>()? {
            if T::matters(&element) {
                relevant = relevant.saturating_add(1);
                if kept.len() < KEEP {
                    kept.push((index, element));
                }
            }
            index = index.saturating_add(1);
        }
        Ok(Some(Items { kept, relevant }))
    }
}

/// Reads an object key as the matching entry of a fixed list, without allocating.
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<&'static str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().copied().find(|k| *k == v))
    }
}

/// A struct of [`Loose`] fields read from a JSON object by key; other keys are skipped. A key that
/// appears twice is not an error here: such keys are recorded in `duplicates`, for the caller to
/// refuse with its pointer (Go's decoder would silently keep the last one; the API server never sends
/// duplicates, so seeing one means the body did not come from it unchanged).
macro_rules! lean_object {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty = $key:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub(crate) struct $name {
            $(pub(crate) $field: Loose<$ty>,)+
            /// Keys that appeared more than once, in the order they were seen again.
            pub(crate) duplicates: Vec<&'static str>,
        }

        impl $name {
            /// The first key that appeared more than once.
            pub(crate) fn first_duplicate(&self) -> Option<&'static str> {
                self.duplicates.first().copied()
            }
        }

        impl Shape for $name {
            fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
                const KEYS: &[&str] = &[$($key),+];
                let mut out = Self::default();
                while let Some(key) = map.next_key_seed(KeySeed(KEYS))? {
                    match key {
                        $(Some($key) => {
                            let value = map.next_value::<Loose<$ty>>()?;
                            if !out.$field.is_absent() && !out.duplicates.contains(&$key) {
                                out.duplicates.push($key);
                            }
                            out.$field = value;
                        })+
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Some(out))
            }
        }
    };
}

lean_object!(
    /// The AdmissionReview document.
    RawReview { api_version: String = "apiVersion", kind: String = "kind", request: RawRequest = "request" }
);

lean_object!(
    /// `request` of an AdmissionReview (`oldObject`, `options`, `userInfo` and the rest are skipped).
    RawRequest {
        uid: String = "uid",
        kind: RawGvk = "kind",
        operation: String = "operation",
        sub_resource: String = "subResource",
        namespace: String = "namespace",
        name: String = "name",
        dry_run: bool = "dryRun",
        object: RawObject = "object",
    }
);

lean_object!(
    /// A group/version/kind.
    RawGvk { group: String = "group", version: String = "version", kind: String = "kind" }
);

lean_object!(
    /// The object under review.
    RawObject { api_version: String = "apiVersion", kind: String = "kind", spec: RawTopSpec = "spec" }
);

/// Containers of one list, capped at one more than [`MAX_IMAGES`] so that going over is seen.
pub(crate) type ContainerList = Items<RawContainer, { MAX_IMAGES + 1 }>;
/// Volumes that carry an image, capped the same way; other volumes are only skipped.
pub(crate) type VolumeList = Items<RawVolume, { MAX_IMAGES + 1 }>;
/// `imagePullSecrets`, capped at one more than [`MAX_PULL_SECRETS`].
pub(crate) type SecretList = Items<RawSecretRef, { MAX_PULL_SECRETS + 1 }>;

lean_object!(
    /// `spec` of the object: a Pod's spec, or the spec of a workload holding a template.
    RawTopSpec {
        init_containers: ContainerList = "initContainers",
        containers: ContainerList = "containers",
        ephemeral_containers: ContainerList = "ephemeralContainers",
        volumes: VolumeList = "volumes",
        image_pull_secrets: SecretList = "imagePullSecrets",
        service_account_name: String = "serviceAccountName",
        service_account: String = "serviceAccount",
        template: RawTemplate = "template",
        job_template: RawJobTemplate = "jobTemplate",
    }
);

lean_object!(
    /// A pod template (`template` of a workload).
    RawTemplate { spec: RawPodSpec = "spec" }
);

lean_object!(
    /// `jobTemplate` of a CronJob.
    RawJobTemplate { spec: RawJobSpec = "spec" }
);

lean_object!(
    /// `spec` of a CronJob's job template.
    RawJobSpec { template: RawTemplate = "template" }
);

lean_object!(
    /// The spec of a pod template.
    RawPodSpec {
        init_containers: ContainerList = "initContainers",
        containers: ContainerList = "containers",
        ephemeral_containers: ContainerList = "ephemeralContainers",
        volumes: VolumeList = "volumes",
        image_pull_secrets: SecretList = "imagePullSecrets",
        service_account_name: String = "serviceAccountName",
        service_account: String = "serviceAccount",
    }
);

lean_object!(
    /// A container, init container or ephemeral container.
    RawContainer { name: String = "name", image: String = "image" }
);

lean_object!(
    /// A volume; only its name and `image` source are read.
    RawVolume { name: String = "name", image: RawImageSource = "image" }
);

impl Relevant for RawVolume {
    /// Volumes of other types (no `image` key) are skipped; anything that is not a plain object is kept, to
    /// be refused.
    fn matters(volume: &Loose<Self>) -> bool {
        match volume {
            Loose::Present(v) => !v.image.is_absent() || !v.duplicates.is_empty(),
            _ => true,
        }
    }
}

impl Relevant for RawContainer {
    fn matters(_: &Loose<Self>) -> bool {
        true
    }
}

impl Relevant for RawSecretRef {
    fn matters(_: &Loose<Self>) -> bool {
        true
    }
}

lean_object!(
    /// An image volume source.
    RawImageSource { reference: String = "reference" }
);

lean_object!(
    /// An `imagePullSecrets` entry.
    RawSecretRef { name: String = "name" }
);

/// The pod-spec fields, wherever the spec sits.
pub(crate) struct PodFields<'a> {
    pub(crate) init_containers: &'a Loose<ContainerList>,
    pub(crate) containers: &'a Loose<ContainerList>,
    pub(crate) ephemeral_containers: &'a Loose<ContainerList>,
    pub(crate) volumes: &'a Loose<VolumeList>,
    pub(crate) image_pull_secrets: &'a Loose<SecretList>,
    pub(crate) service_account_name: &'a Loose<String>,
    pub(crate) service_account: &'a Loose<String>,
    pub(crate) duplicate: Option<&'static str>,
}

macro_rules! pod_fields {
    ($ty:ty) => {
        impl $ty {
            pub(crate) fn pod_fields(&self) -> PodFields<'_> {
                PodFields {
                    init_containers: &self.init_containers,
                    containers: &self.containers,
                    ephemeral_containers: &self.ephemeral_containers,
                    volumes: &self.volumes,
                    image_pull_secrets: &self.image_pull_secrets,
                    service_account_name: &self.service_account_name,
                    service_account: &self.service_account,
                    duplicate: self.first_duplicate(),
                }
            }
        }
    };
}

pod_fields!(RawTopSpec);
pod_fields!(RawPodSpec);
