//! A throwaway OpenLDAP server for tests and benchmarks: `slapd` on free loopback ports with
//! a generated `slapd.conf` and an mdb database in a temporary directory, loaded offline with
//! `slapadd`, killed on drop.
//!
//! The server has a root DN (`cn=admin,dc=example,dc=org`, password `secret`) that ignores
//! size limits, and a reader (`cn=sync,dc=example,dc=org`, password `syncpw`) that the sync
//! binds as, so configured size limits apply to it.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use homestead::certs::{CA_CERT_FILE, TLS_CERT_FILE, TLS_KEY_FILE};
use homestead_core::config::{LdapAttributes, LdapConfig, LdapSearch};
use tempfile::TempDir;

/// Base DN of the test directory.
pub const BASE: &str = "dc=example,dc=org";
/// Where persons live.
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
/// Where groups live.
pub const GROUPS: &str = "ou=groups,dc=example,dc=org";
/// Root DN (no limits).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
/// Root password.
pub const ADMIN_PASSWORD: &str = "secret";
/// The DN the sync binds as.
pub const READER_DN: &str = "cn=sync,dc=example,dc=org";
/// Its password.
pub const READER_PASSWORD: &str = "syncpw";

const SCHEMAS: &[&str] = &["core", "cosine", "nis", "inetorgperson"];

/// How to start the server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `sizelimit` for everyone but the root DN (soft and hard); slapd's default is 500.
    pub size_limit: Option<u32>,
    /// Let paged searches read everything (`size.prtotal=unlimited`); otherwise slapd stops
    /// them at the size limit too.
    pub unlimited_paging: bool,
    /// Also listen on ldaps:// and offer StartTLS, serving the certificate in this directory
    /// as `homestead certs --out DIR` writes it (`ca.crt`, `tls.crt`, `tls.key`).
    pub tls: Option<PathBuf>,
}

/// A running slapd.
pub struct Slapd {
    child: Child,
    dir: TempDir,
    /// `ldap://127.0.0.1:PORT`.
    pub url: String,
    /// `ldap://localhost:PORT` (same listener; for StartTLS by host name).
    pub localhost_url: String,
    /// `ldaps://127.0.0.1:PORT` when started with TLS.
    pub ldaps_url: Option<String>,
    /// The CA certificate (PEM) that signed the server certificate, when started with TLS.
    pub ca_file: Option<PathBuf>,
}

/// Path of the slapd binary, or a failure saying how to get it.
pub fn slapd_binary() -> PathBuf {
    for candidate in [
        "/usr/sbin/slapd",
        "/usr/local/sbin/slapd",
        "/usr/libexec/slapd",
    ] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "slapd (OpenLDAP server) was not found in /usr/sbin, /usr/local/sbin or /usr/libexec. \
         The LDAP tests need a real server: run tests/run.sh, which installs slapd and \
         ldap-utils when they are missing (or: apt-get install slapd ldap-utils)."
    );
}

fn sibling(tool: &str) -> PathBuf {
    let slapd = slapd_binary();
    let path = slapd.with_file_name(tool);
    assert!(
        path.exists(),
        "{} not found next to slapd: run tests/run.sh, which installs slapd and ldap-utils",
        path.display()
    );
    path
}

fn free_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("binding a free loopback port")
}

impl Slapd {
    /// Starts slapd with `ldif` loaded (the base, `ou=people`, `ou=groups` and the reader
    /// entry are always there).
    pub fn start(options: Options, ldif: &str) -> Slapd {
        let slapd = slapd_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("database directory");

        let mut conf = String::new();
        for schema in SCHEMAS {
            let path = schema_dir().join(format!("{schema}.schema"));
            writeln!(conf, "include {}", path.display()).unwrap();
        }
        writeln!(conf, "pidfile {}", dir.path().join("slapd.pid").display()).unwrap();
        if let Some(modules) = module_dir() {
            writeln!(
                conf,
                "modulepath {}\nmoduleload back_mdb",
                modules.display()
            )
            .unwrap();
        }
        if options.size_limit.is_some() || options.unlimited_paging {
            let limit = options.size_limit.unwrap_or(500);
            let paging = if options.unlimited_paging {
                " size.prtotal=unlimited"
            } else {
                ""
            };
            writeln!(
                conf,
                "sizelimit size.soft={limit} size.hard={limit}{paging}"
            )
            .unwrap();
        }
        let mut ca_file = None;
        if let Some(certs) = &options.tls {
            let ca = certs.join(CA_CERT_FILE);
            for file in [CA_CERT_FILE, TLS_CERT_FILE, TLS_KEY_FILE] {
                assert!(
                    certs.join(file).exists(),
                    "{} has no {file}",
                    certs.display()
                );
            }
            writeln!(
                conf,
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}",
                ca.display(),
                certs.join(TLS_CERT_FILE).display(),
                certs.join(TLS_KEY_FILE).display()
            )
            .unwrap();
            ca_file = Some(ca);
        }
        writeln!(
            conf,
            "database mdb\nmaxsize 1073741824\nsuffix \"{BASE}\"\nrootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\ndirectory {}\nindex objectClass eq\n\
             access to * by * read",
            db.display()
        )
        .unwrap();
        let conf_path = dir.path().join("slapd.conf");
        std::fs::write(&conf_path, conf).expect("writing slapd.conf");

        let data = dir.path().join("data.ldif");
        std::fs::write(&data, format!("{}{ldif}", base_ldif())).expect("writing LDIF");
        let out = Command::new(sibling("slapadd"))
            .arg("-q")
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(&data)
            .output()
            .expect("running slapadd");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let ldap_listener = free_port();
        let ldaps_listener = free_port();
        let port = ldap_listener.local_addr().unwrap().port();
        let tls_port = ldaps_listener.local_addr().unwrap().port();
        let mut listen = format!("ldap://127.0.0.1:{port}/");
        if options.tls.is_some() {
            write!(listen, " ldaps://127.0.0.1:{tls_port}/").unwrap();
        }
        drop((ldap_listener, ldaps_listener));

        let log = std::fs::File::create(dir.path().join("slapd.log")).expect("log file");
        let child = Command::new(slapd)
            .arg("-f")
            .arg(&conf_path)
            .arg("-h")
            .arg(&listen)
            // Any debug level keeps slapd in the foreground, so it can be killed on drop.
            .arg("-d")
            .arg("0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting slapd");
        let mut server = Slapd {
            child,
            dir,
            url: format!("ldap://127.0.0.1:{port}"),
            localhost_url: format!("ldap://localhost:{port}"),
            ldaps_url: options
                .tls
                .is_some()
                .then(|| format!("ldaps://127.0.0.1:{tls_port}")),
            ca_file,
        };
        server.wait_listening(port);
        if options.tls.is_some() {
            server.wait_listening(tls_port);
        }
        server
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("slapd status") {
                panic!("slapd exited with {status}:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not listen on port {port} within 15 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What slapd wrote.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// The temporary directory (configuration files may be written here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An `ldap` configuration binding as the reader, default attributes.
    pub fn config(&self) -> LdapConfig {
        let password = self.dir.path().join("bind-password");
        std::fs::write(&password, format!("{READER_PASSWORD}\n")).expect("password file");
        LdapConfig {
            url: self.url.clone(),
            start_tls: false,
            ca_file: None,
            bind_dn: Some(READER_DN.into()),
            bind_password_file: Some(password.display().to_string()),
            users: LdapSearch {
                base: PEOPLE.into(),
                filter: "(objectClass=posixAccount)".into(),
            },
            groups: LdapSearch {
                base: GROUPS.into(),
                filter: "(objectClass=posixGroup)".into(),
            },
            attributes: LdapAttributes::default(),
            only_members_of: Vec::new(),
            page_size: 500,
            interval: Duration::from_secs(300),
        }
    }

    /// Writes `config` as a homestead configuration file and returns its path.
    pub fn write_config_file(&self, config: &LdapConfig) -> PathBuf {
        #[derive(serde::Serialize)]
        struct File<'a> {
            ldap: &'a LdapConfig,
        }
        let path = self.dir.path().join("homestead.yaml");
        let text = serde_saphyr::to_string(&File { ldap: config }).expect("config YAML");
        std::fs::write(&path, text).expect("writing the configuration");
        path
    }

    /// Stops the server now (the directory becomes unreachable).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn schema_dir() -> PathBuf {
    for dir in [
        "/etc/ldap/schema",
        "/etc/openldap/schema",
        "/usr/local/etc/openldap/schema",
    ] {
        if Path::new(dir).join("nis.schema").exists() {
            return dir.into();
        }
    }
    panic!("OpenLDAP schema files (nis.schema) not found: run tests/run.sh, which installs slapd");
}

fn module_dir() -> Option<PathBuf> {
    ["/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap"]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.join("back_mdb.so").exists() || d.join("back_mdb.la").exists())
}

/// The entries every test directory has.
fn base_ldif() -> String {
    format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {READER_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
         cn: sync\nuserPassword: {READER_PASSWORD}\n\n"
    )
}

/// A posixAccount under `ou=people`.
pub fn posix_user(username: &str, uid: u32, gid: u32) -> String {
    format!(
        "dn: uid={username},{PEOPLE}\nobjectClass: account\nobjectClass: posixAccount\n\
         uid: {username}\ncn: {username}\nuidNumber: {uid}\ngidNumber: {gid}\n\
         homeDirectory: /home/{username}\n\n"
    )
}

/// A posixGroup under `ou=groups`.
pub fn posix_group(name: &str, gid: u32, members: &[&str]) -> String {
    let mut out =
        format!("dn: cn={name},{GROUPS}\nobjectClass: posixGroup\ncn: {name}\ngidNumber: {gid}\n");
    for member in members {
        writeln!(out, "memberUid: {member}").unwrap();
    }
    out.push('\n');
    out
}

/// LDIF of `users` persons (`user00001`, ... uid 100001 ..., gid 5000) and `groups` groups
/// (`group0001`, ... gid 20001 ...), each person a member of three groups.
pub fn generated(users: usize, groups: usize) -> String {
    let mut members: Vec<Vec<String>> = vec![Vec::new(); groups];
    let mut out = String::with_capacity(users * 200 + groups * 100);
    for i in 1..=users {
        let name = format!("user{i:05}");
        out.push_str(&posix_user(&name, 100_000 + i as u32, 5000));
        if groups > 0 {
            for k in 0..3 {
                members[(i * 7 + k * 13) % groups].push(name.clone());
            }
        }
    }
    for (g, list) in members.iter().enumerate() {
        let list: Vec<&str> = list.iter().map(String::as_str).collect();
        out.push_str(&posix_group(
            &format!("group{:04}", g + 1),
            20_001 + g as u32,
            &list,
        ));
    }
    out
}
