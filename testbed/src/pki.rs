//! Key material for one control plane: a CA, the API server's serving certificate, its client
//! certificate for kubelets and the service-account signing key. Generated fresh for every
//! start; nothing is reused across runs.

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

pub struct Pki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// The API server's identity towards kubelets (logs, exec): `system:masters`.
    pub kubelet_client_cert_pem: String,
    pub kubelet_client_key_pem: String,
    pub sa_private_key_pem: String,
    pub sa_public_key_pem: String,
}

impl Pki {
    /// `extra_ips` are further addresses the serving certificate names: with a node, the host
    /// address pods reach it on and the `kubernetes` Service's cluster IP.
    pub fn generate(extra_ips: &[std::net::IpAddr]) -> Result<Self> {
        let ca_key = KeyPair::generate().context("generating CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testbed-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).context("signing CA")?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate().context("generating serving key")?;
        let mut serving_params = CertificateParams::new(vec!["localhost".to_string()])?;
        serving_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving_params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        serving_params
            .subject_alt_names
            .push(SanType::DnsName("kubernetes.default.svc".try_into()?));
        for ip in extra_ips {
            serving_params
                .subject_alt_names
                .push(SanType::IpAddress(*ip));
        }
        let serving_cert = serving_params
            .signed_by(&serving_key, &issuer)
            .context("signing serving certificate")?;

        let client_key = KeyPair::generate().context("generating kubelet client key")?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver-kubelet-client");
        client_params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params
            .signed_by(&client_key, &issuer)
            .context("signing kubelet client certificate")?;

        let sa_key = KeyPair::generate().context("generating service-account key")?;

        Ok(Self {
            ca_cert_pem: ca_cert.pem(),
            serving_cert_pem: serving_cert.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            kubelet_client_cert_pem: client_cert.pem(),
            kubelet_client_key_pem: client_key.serialize_pem(),
            sa_private_key_pem: sa_key.serialize_pem(),
            sa_public_key_pem: sa_key.public_key_pem(),
        })
    }
}

/// A serving certificate for a server the test bed runs beside the API server (a webhook), with
/// the CA that signed it, for a `caBundle`.
pub struct ServingCertificate {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Issues a fresh CA and a serving certificate for `ips` from it.
pub fn serving_certificate(ips: &[std::net::IpAddr]) -> Result<ServingCertificate> {
    let ca_key = KeyPair::generate().context("generating CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "testbed-webhook-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).context("signing CA")?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().context("generating serving key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "testbed-webhook");
    params.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing serving certificate")?;
    Ok(ServingCertificate {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
