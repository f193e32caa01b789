//! Throwaway PKI for the test control plane: a CA, a serving certificate for loopback and the
//! service-account signing key.

pub struct Pki {
    /// PEM of the CA that signed the serving certificate; clients trust only this.
    pub ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// PKCS#8 PEM of the key that signs service-account tokens.
    pub service_account_key_pem: String,
    /// The public half, which the apiserver verifies tokens with.
    pub service_account_public_key_pem: String,
}

pub fn generate() -> Result<Pki, rcgen::Error> {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "qlikops envtest CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;

    let serving_key = rcgen::KeyPair::generate()?;
    let mut serving_params = rcgen::CertificateParams::new(vec![
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        // The in-cluster service IP of the first address of --service-cluster-ip-range.
        "10.0.0.1".to_owned(),
    ])?;
    serving_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    let serving = serving_params.signed_by(&serving_key, &ca)?;

    let service_account_key = rcgen::KeyPair::generate()?;
    Ok(Pki {
        ca_pem: ca.pem(),
        serving_cert_pem: serving.pem(),
        serving_key_pem: serving_key.serialize_pem(),
        service_account_key_pem: service_account_key.serialize_pem(),
        service_account_public_key_pem: service_account_key.public_key_pem(),
    })
}
