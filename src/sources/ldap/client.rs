//! Reading the directory: connect (ldap://, ldaps://, StartTLS), bind, and fetch persons and
//! groups with the paged-results control.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use homestead_core::config::{LdapConfig, LdapSearch};
use homestead_core::sources::ldap::Entry;

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any one LDAP operation may take.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

/// LDAP result code `sizeLimitExceeded`.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// Everything one sync reads from the directory.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// Person entries.
    pub users: Vec<Entry>,
    /// Group entries.
    pub groups: Vec<Entry>,
}

/// Connects, binds, reads persons and groups page by page, and unbinds.
pub async fn fetch(config: &LdapConfig) -> Result<Fetched> {
    let mut ldap = connect(config).await?;
    let result = fetch_with(&mut ldap, config).await;
    // Closing is best effort: the data is read (or the error is what matters).
    let _ = ldap.unbind().await;
    result
}

/// Connects, binds, reads the groups only (the ISPyB sync's visit gids and instrument
/// staff) page by page, and unbinds.
pub async fn fetch_groups(config: &LdapConfig) -> Result<Vec<Entry>> {
    let mut ldap = connect(config).await?;
    let result = match bind(&mut ldap, config).await {
        Ok(()) => search_groups(&mut ldap, config).await,
        Err(e) => Err(e),
    };
    let _ = ldap.unbind().await;
    result
}

async fn bind(ldap: &mut Ldap, config: &LdapConfig) -> Result<()> {
    if let Some(dn) = &config.bind_dn {
        let password = read_password(config)?;
        ldap.with_timeout(OPERATION_TIMEOUT)
            .simple_bind(dn, &password)
            .await
            .and_then(|r| r.success())
            .with_context(|| format!("binding to {} as {dn}", config.url))?;
    }
    Ok(())
}

async fn search_groups(ldap: &mut Ldap, config: &LdapConfig) -> Result<Vec<Entry>> {
    let a = &config.attributes;
    search(
        ldap,
        config,
        "groups",
        &config.groups,
        vec![a.group.clone(), a.gid.clone(), a.member.clone()],
    )
    .await
}

async fn fetch_with(ldap: &mut Ldap, config: &LdapConfig) -> Result<Fetched> {
    bind(ldap, config).await?;
    let a = &config.attributes;
    let users = search(
        ldap,
        config,
        "users",
        &config.users,
        vec![a.username.clone(), a.uid.clone(), a.gid.clone()],
    )
    .await?;
    let groups = search_groups(ldap, config).await?;
    Ok(Fetched { users, groups })
}

/// Opens a connection (TLS as configured) and spawns its driver.
pub async fn connect(config: &LdapConfig) -> Result<Ldap> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(CONNECT_TIMEOUT)
        .set_starttls(config.start_tls);
    if let Some(ca_file) = &config.ca_file {
        settings = settings.set_config(Arc::new(tls_config(ca_file)?));
    }
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &config.url)
        .await
        .with_context(|| format!("connecting to {}", config.url))?;
    let url = config.url.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::warn!(url = %url, error = %e, "LDAP connection ended with an error");
        }
    });
    Ok(ldap)
}

/// A rustls client configuration trusting only the CA certificates in `ca_file`.
fn tls_config(ca_file: &str) -> Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("reading caFile {ca_file}"))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("parsing caFile {ca_file}"))?;
        roots
            .add(cert)
            .with_context(|| format!("caFile {ca_file} holds a certificate rustls refuses"))?;
    }
    if roots.is_empty() {
        bail!("caFile {ca_file} holds no PEM certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn read_password(config: &LdapConfig) -> Result<String> {
    let path = config
        .bind_password_file
        .as_deref()
        .ok_or_else(|| anyhow!("bindDN is set but bindPasswordFile is not"))?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading bindPasswordFile {path}"))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// One subtree search with the paged-results control, every entry collected.
async fn search(
    ldap: &mut Ldap,
    config: &LdapConfig,
    what: &str,
    search: &LdapSearch,
    attrs: Vec<String>,
) -> Result<Vec<Entry>> {
    let context = || {
        format!(
            "searching {what} under {:?} with {} on {}",
            search.base, search.filter, config.url
        )
    };
    let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(config.page_size)),
    ];
    let mut stream = ldap
        .with_timeout(OPERATION_TIMEOUT)
        .streaming_search_with(
            adapters,
            &search.base,
            Scope::Subtree,
            &search.filter,
            attrs,
        )
        .await
        .with_context(context)?;
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await.with_context(context)? {
        let entry = SearchEntry::construct(entry);
        let binary = entry.bin_attrs.into_iter().map(|(name, values)| {
            let values: Vec<String> = values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            (name, values)
        });
        entries.push(Entry::new(entry.dn, entry.attrs.into_iter().chain(binary)));
    }
    let done = stream.finish().await;
    if done.rc == SIZE_LIMIT_EXCEEDED {
        bail!(
            "{}: the server stopped after {} entries because of its size limit; paged searches \
             must be allowed to return everything to {} (OpenLDAP: `limits dn.exact=\"{}\" \
             size.prtotal=unlimited`); nothing was changed",
            context(),
            entries.len(),
            config.bind_dn.as_deref().unwrap_or("anonymous"),
            config.bind_dn.as_deref().unwrap_or("anonymous"),
        );
    }
    done.success().with_context(context)?;
    Ok(entries)
}
