//! Our admission webhook in the one-node cluster, deployed as `deploy/` ships it.
//!
//! [`TestCluster::deploy_webhook`] pushes the `kibaship-webhook` binary as an image to the cluster's registry and
//! applies `deploy/` from a temporary copy: the overlay `provided-tls` with a CA and serving certificate made
//! here, the policy file replaced by the caller's, and one test overlay that changes only the image and adds
//! `--insecure-registry` for the cluster's plain-HTTP registry (which listens on the node address: the webhook's
//! Pods reach it through their default route at the same `HOST:PORT` the kubelet pulls from). It returns once
//! the Deployment's rollout is complete (two replicas on the Pod network, `kibaship-system` at the `restricted`
//! Pod Security level, as shipped).
//!
//! [`TestCluster::create_through_webhook`] creates an object in a namespace the webhook guards and tells an
//! admission (`Ok`) from a denial (`Err` with the API server's message), retrying while the API server cannot
//! reach the webhook yet ("failed calling webhook": the Service routes only once the endpoints are published;
//! failurePolicy Fail refuses meanwhile).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::HarnessError;
use crate::cluster::TestCluster;
use crate::kube::wait_until;

/// The webhook Service's DNS name, which the serving certificate names.
pub const WEBHOOK_SERVICE: &str = "kibaship-webhook.kibaship-system.svc";
/// The webhook's namespace in `deploy/`.
pub const WEBHOOK_NAMESPACE: &str = "kibaship-system";
/// What the API server says when it could not call a webhook (unreachable, timed out, TLS failure).
pub const WEBHOOK_CALL_FAILED: &str = "failed calling webhook";

/// Tries (half a second apart) while the webhook is not reachable yet; nothing is asserted about time.
const TRIES: u32 = 240;
const PAUSE: Duration = Duration::from_millis(500);

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |e| HarnessError::io(what, e)
}

/// A CA and a serving certificate for [`WEBHOOK_SERVICE`]: (ca_pem, cert_pem, key_pem).
fn service_certificate() -> Result<(String, String, String), HarnessError> {
    let cert_err = |e: rcgen::Error| HarnessError::Certificates(e.to_string());
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kibaship cluster test CA");
    let ca = ca_params.self_signed(&ca_key).map_err(cert_err)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::new(vec![WEBHOOK_SERVICE.to_string()]).map_err(cert_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, WEBHOOK_SERVICE);
    let cert = params.signed_by(&key, &issuer).map_err(cert_err)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), HarnessError> {
    fs::create_dir_all(to).map_err(io_err("creating the deploy copy"))?;
    for entry in fs::read_dir(from).map_err(io_err("reading deploy/"))? {
        let entry = entry.map_err(io_err("reading deploy/"))?;
        let target = to.join(entry.file_name());
        if entry
            .file_type()
            .map_err(io_err("reading deploy/"))?
            .is_dir()
        {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target).map_err(io_err("copying deploy/"))?;
        }
    }
    Ok(())
}

fn test_overlay(image_name: &str, insecure: &[String]) -> String {
    let args: String = insecure
        .iter()
        .map(|registry| {
            format!(
                "      - op: add\n        path: /spec/template/spec/containers/0/args/-\n        value: --insecure-registry\n      - op: add\n        path: /spec/template/spec/containers/0/args/-\n        value: \"{registry}\"\n"
            )
        })
        .collect();
    format!(
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../provided-tls
images:
  - name: ghcr.io/kibaship/kibaship
    newName: {image_name}
    newTag: test
patches:
  - target:
      kind: Deployment
      name: kibaship-webhook
    patch: |-
{args}"#
    )
}

/// The repository's `deploy/` directory.
fn shipped_deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

impl TestCluster {
    /// Deploys the webhook `binary` (the `kibaship-webhook` program) as `deploy/` ships it, judging by `policy`
    /// (an admission policy file's text, which replaces `deploy/base/policy.yaml`), and waits for the rollout.
    /// Returns the webhook's image reference.
    pub fn deploy_webhook(&self, binary: &Path, policy: &str) -> Result<String, HarnessError> {
        self.deploy_webhook_reaching(binary, policy, &[])
    }

    /// As [`TestCluster::deploy_webhook`], the webhook also reaching the plain-HTTP registries `insecure`
    /// (`HOST:PORT`, such as a fault proxy on the node address) besides the cluster's.
    pub fn deploy_webhook_reaching(
        &self,
        binary: &Path,
        policy: &str,
        insecure: &[String],
    ) -> Result<String, HarnessError> {
        let registry = self.registry().map(|r| r.host()).ok_or_else(|| {
            HarnessError::io(
                "the cluster has no registry",
                std::io::ErrorKind::NotFound.into(),
            )
        })?;
        let image = self.push_program_image(
            "kibaship/webhook:test",
            &[(binary, "/usr/local/bin/kibaship-webhook")],
        )?;
        let work = tempfile::Builder::new()
            .prefix("webhook-deploy-")
            .tempdir_in(self.state_dir())
            .map_err(io_err("creating the deploy copy's directory"))?;
        let deploy = work.path().join("deploy");
        copy_tree(&shipped_deploy(), &deploy)?;
        let (ca, cert, key) = service_certificate()?;
        let tls = deploy.join("overlays/provided-tls");
        for (file, text) in [("ca.crt", ca), ("tls.crt", cert), ("tls.key", key)] {
            fs::write(tls.join(file), text).map_err(io_err("writing the webhook's certificate"))?;
        }
        fs::write(deploy.join("base/policy.yaml"), policy)
            .map_err(io_err("writing the webhook's policy"))?;
        let overlay = deploy.join("overlays/cluster-test");
        fs::create_dir_all(&overlay).map_err(io_err("creating the test overlay"))?;
        let image_name = image.rsplit_once(':').map_or(image.as_str(), |(n, _)| n);
        fs::write(
            overlay.join("kustomization.yaml"),
            test_overlay(
                image_name,
                &[std::slice::from_ref(&registry), insecure].concat(),
            ),
        )
        .map_err(io_err("writing the test overlay"))?;
        let overlay = overlay.to_string_lossy().into_owned();
        self.kubectl_ok(&["apply", "-k", &overlay])?;
        let rollout = [
            "rollout",
            "status",
            "-n",
            WEBHOOK_NAMESPACE,
            "deployment/kibaship-webhook",
            "--timeout=180s",
        ];
        self.kubectl_ok(&rollout)
            .map_err(|e| HarnessError::CommandFailed {
                command: "kubectl rollout status deployment/kibaship-webhook".into(),
                status: "not rolled out".into(),
                stderr: format!("{e}\n{}", self.webhook_diagnostics()),
            })?;
        Ok(image)
    }

    /// The webhook's Pods, endpoints, log tail and Pod descriptions, for failure messages.
    pub fn webhook_diagnostics(&self) -> String {
        let get = |args: &[&str]| self.kubectl_ok(args).unwrap_or_default();
        format!(
            "{}\n{}\n{}",
            get(&[
                "get",
                "pods,endpoints",
                "-n",
                WEBHOOK_NAMESPACE,
                "-o",
                "wide"
            ]),
            get(&[
                "logs",
                "-n",
                WEBHOOK_NAMESPACE,
                "deployment/kibaship-webhook",
                "--tail=40"
            ]),
            get(&["describe", "pods", "-n", WEBHOOK_NAMESPACE]),
        )
    }

    /// Creates `manifest` (`kubectl create -f -`) where the webhook decides: `Ok` with kubectl's output when
    /// admitted, `Err` with the API server's message when denied. While the API server cannot call the webhook
    /// (the message names [`WEBHOOK_CALL_FAILED`]), it tries again; if that lasts, the last such error.
    pub fn create_through_webhook(&self, manifest: &str) -> Result<String, HarnessError> {
        let mut last = None;
        let decided = wait_until(TRIES, PAUSE, || {
            match self.kubectl_stdin_ok(&["create", "-f", "-"], manifest) {
                Ok(out) => Some(Ok(out)),
                Err(e) if e.to_string().contains(WEBHOOK_CALL_FAILED) => {
                    last = Some(e);
                    None
                }
                Err(e) => Some(Err(e)),
            }
        });
        match (decided, last) {
            (Some(outcome), _) => outcome,
            (None, Some(e)) => Err(e),
            (None, None) => Err(HarnessError::CommandFailed {
                command: "kubectl create -f -".into(),
                status: "no answer".into(),
                stderr: "the webhook was never reached".into(),
            }),
        }
    }
}
