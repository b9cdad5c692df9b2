//! A throwaway MariaDB server for tests and benchmarks: `mariadbd` on a free loopback port
//! with a data directory made by `mariadb-install-db` in a temporary directory, killed on
//! drop. It holds a database `ispyb` with the ISPyB tables the sync reads (`Proposal`,
//! `BLSession`, `Person`, `Session_has_Person`, with ISPyB's own column names and types),
//! an administrator (`admin`, password `adminpw`) that the tests write with, and a reader
//! (`reader`, password `readerpw`, SELECT on `ispyb` only) that the sync connects as.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use homestead_core::config::{LdapConfig, SessionSourceConfig};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use tempfile::TempDir;

/// The reader's password.
pub const READER_PASSWORD: &str = "readerpw";

/// ISPyB's tables as the sync reads them: the columns it uses (and a few neighbours), with
/// the names, types, keys and foreign keys of ISPyB's schema.
pub const SCHEMA: &str = "
CREATE TABLE Person (
  personId int(10) unsigned NOT NULL AUTO_INCREMENT,
  familyName varchar(100) DEFAULT NULL,
  givenName varchar(45) DEFAULT NULL,
  login varchar(45) DEFAULT NULL,
  PRIMARY KEY (personId),
  KEY Person_FKIndex_Login (login)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE Proposal (
  proposalId int(10) unsigned NOT NULL AUTO_INCREMENT,
  personId int(10) unsigned NOT NULL DEFAULT 0,
  title varchar(200) DEFAULT NULL,
  proposalCode varchar(45) DEFAULT NULL,
  proposalNumber varchar(45) DEFAULT NULL,
  proposalType varchar(2) DEFAULT NULL,
  state enum('Open','Closed','Cancelled') DEFAULT 'Open',
  PRIMARY KEY (proposalId),
  KEY Proposal_FKIndexCodeNumber (proposalCode, proposalNumber)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
CREATE TABLE BLSession (
  sessionId int(10) unsigned NOT NULL AUTO_INCREMENT,
  proposalId int(10) unsigned NOT NULL DEFAULT 0,
  startDate datetime DEFAULT NULL,
  endDate datetime DEFAULT NULL,
  beamLineName varchar(45) DEFAULT NULL,
  scheduled tinyint(1) DEFAULT NULL,
  visit_number int(10) unsigned DEFAULT 0,
  PRIMARY KEY (sessionId),
  KEY Session_FKIndex1 (proposalId),
  KEY Session_FKIndexStartDate (startDate),
  KEY Session_FKIndexEndDate (endDate),
  KEY Session_FKIndexBeamLineName (beamLineName),
  CONSTRAINT BLSession_ibfk_1 FOREIGN KEY (proposalId) REFERENCES Proposal (proposalId)
    ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
CREATE TABLE Session_has_Person (
  sessionId int(10) unsigned NOT NULL DEFAULT 0,
  personId int(10) unsigned NOT NULL DEFAULT 0,
  role enum('Local Contact','Local Contact 2','Staff','Team Leader','Co-Investigator',
            'Principal Investigator','Alternate Contact') DEFAULT NULL,
  remote tinyint(1) DEFAULT 0,
  PRIMARY KEY (sessionId, personId),
  KEY Session_has_Person_FKIndex1 (sessionId),
  KEY Session_has_Person_FKIndex2 (personId),
  CONSTRAINT Session_has_Person_ibfk_1 FOREIGN KEY (sessionId) REFERENCES BLSession (sessionId)
    ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT Session_has_Person_ibfk_2 FOREIGN KEY (personId) REFERENCES Person (personId)
    ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
";

/// A running mariadbd.
pub struct MariaDb {
    child: Child,
    dir: TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

/// Path of a MariaDB program, if installed.
fn program(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Options that keep a test server small and quick.
const SERVER_OPTIONS: &[&str] = &["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=64M"];

impl MariaDb {
    /// Starts a server with the ISPyB schema, or returns `None` (saying so on standard
    /// error) when MariaDB is not installed: run tests/run.sh, which installs
    /// mariadb-server.
    pub fn start() -> Option<MariaDb> {
        Self::start_with(&[])
    }

    /// Like [`MariaDb::start`], also serving TLS with the certificate in `certs` as
    /// `homestead certs --out DIR` writes it (`ca.crt`, `tls.crt`, `tls.key`).
    pub fn start_tls(certs: &Path) -> Option<MariaDb> {
        Self::start_with(&[
            format!("--ssl-ca={}", certs.join("ca.crt").display()),
            format!("--ssl-cert={}", certs.join("tls.crt").display()),
            format!("--ssl-key={}", certs.join("tls.key").display()),
        ])
    }

    fn start_with(extra: &[String]) -> Option<MariaDb> {
        let (Some(server), Some(install)) = (program("mariadbd"), program("mariadb-install-db"))
        else {
            eprintln!(
                "SKIPPED: mariadbd / mariadb-install-db not found. The ISPyB tests need a real \
                 MariaDB server: run tests/run.sh, which installs mariadb-server when it is \
                 missing (or: apt-get install mariadb-server)."
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        // A temporary directory of its own: servers sharing /tmp collide on the names of
        // their internal temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("tmpdir");
        let tmpdir = format!("--tmpdir={}", tmp.display());
        let mut install = Command::new(install);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(SERVER_OPTIONS);
        if running_as_root() {
            install.arg("--user=root");
        }
        let out = install.output().expect("running mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let init = dir.path().join("init.sql");
        std::fs::write(
            &init,
            format!(
                "CREATE DATABASE IF NOT EXISTS ispyb;\n\
                 CREATE USER IF NOT EXISTS 'admin'@'%' IDENTIFIED BY 'adminpw';\n\
                 GRANT ALL ON *.* TO 'admin'@'%';\n\
                 CREATE USER IF NOT EXISTS 'reader'@'%' IDENTIFIED BY '{READER_PASSWORD}';\n\
                 GRANT SELECT ON ispyb.* TO 'reader'@'%';\n"
            ),
        )
        .expect("writing init.sql");
        let port = free_port();
        let log = dir.path().join("mariadbd.log");
        let mut command = Command::new(server);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .arg(format!(
                "--socket={}",
                dir.path().join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--init-file={}", init.display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
            ])
            .args(SERVER_OPTIONS)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if running_as_root() {
            command.arg("--user=root");
        }
        let child = command.spawn().expect("starting mariadbd");
        let mut server = MariaDb { child, dir, port };
        server.wait_listening();
        Some(server)
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("mariadbd status") {
                panic!("mariadbd exited with {status}:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd did not listen on port {} within 30 s:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What mariadbd wrote to its error log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mariadbd.log")).unwrap_or_default()
    }

    /// The temporary directory (files such as configurations may be written here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL the sync reads with (its password is in [`MariaDb::password_file`]).
    pub fn reader_url(&self) -> String {
        format!("mysql://reader@127.0.0.1:{}/ispyb", self.port)
    }

    /// A file holding the reader's password.
    pub fn password_file(&self) -> PathBuf {
        let path = self.dir.path().join("reader-password");
        std::fs::write(&path, format!("{READER_PASSWORD}\n")).expect("password file");
        path
    }

    /// A `sessionSource` reading this server as the reader, otherwise the defaults.
    pub fn source(&self) -> SessionSourceConfig {
        let yaml = format!(
            "ispyb: {{url: '{}', passwordFile: '{}'}}",
            self.reader_url(),
            self.password_file().display()
        );
        serde_saphyr::from_str(&yaml).expect("sessionSource")
    }

    /// Writes a configuration file with `ldap` (when given) and `sessionSource` sections.
    pub fn write_config(&self, ldap: Option<&LdapConfig>, source: &SessionSourceConfig) -> PathBuf {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct File<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            ldap: Option<&'a LdapConfig>,
            session_source: &'a SessionSourceConfig,
        }
        let path = self.dir.path().join("homestead.yaml");
        let text = serde_saphyr::to_string(&File {
            ldap,
            session_source: source,
        })
        .expect("config YAML");
        std::fs::write(&path, text).expect("writing the configuration");
        path
    }

    /// A connection as the administrator to the `ispyb` database.
    pub async fn admin(&self) -> Conn {
        let url = format!("mysql://admin:adminpw@127.0.0.1:{}/ispyb", self.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The init file runs once the server listens; the first attempts may be refused.
            match Conn::new(Opts::from_url(&url).expect("admin URL")).await {
                Ok(conn) => return conn,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot connect as admin: {e}\n{}", self.log()),
            }
        }
    }

    /// A connection as the administrator with ISPyB's tables created.
    pub async fn with_schema(&self) -> Conn {
        let mut conn = self.admin().await;
        conn.query_drop(SCHEMA)
            .await
            .expect("creating the ISPyB tables");
        conn
    }

    /// Stops the server now (the database becomes unreachable).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A visit to insert: dates are SQL expressions (`NOW() - INTERVAL 1 DAY`, `NULL`).
#[derive(Debug, Clone)]
pub struct Visit<'a> {
    /// `Proposal.proposalCode` (SQL NULL when `None`).
    pub code: Option<&'a str>,
    /// `Proposal.proposalNumber`.
    pub number: &'a str,
    /// `BLSession.visit_number`.
    pub visit: u32,
    /// `BLSession.beamLineName`.
    pub instrument: &'a str,
    /// `BLSession.startDate`, an SQL expression.
    pub start: &'a str,
    /// `BLSession.endDate`, an SQL expression.
    pub end: &'a str,
    /// Logins of the people on the visit (`Person` rows are made as needed).
    pub people: &'a [&'a str],
}

impl<'a> Visit<'a> {
    /// A visit running now (started yesterday, ends in two days) with `people`.
    pub fn now(code: &'a str, number: &'a str, visit: u32, instrument: &'a str) -> Self {
        Visit {
            code: Some(code),
            number,
            visit,
            instrument,
            start: "NOW() - INTERVAL 1 DAY",
            end: "NOW() + INTERVAL 2 DAY",
            people: &[],
        }
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Inserts a visit (a proposal of its own, the session, its people) and returns its
/// `sessionId`.
pub async fn add_visit(conn: &mut Conn, visit: &Visit<'_>) -> u64 {
    let code = visit.code.map_or("NULL".to_owned(), quote);
    conn.query_drop(format!(
        "INSERT INTO Proposal (proposalCode, proposalNumber) VALUES ({code}, {})",
        quote(visit.number)
    ))
    .await
    .expect("inserting a proposal");
    let proposal = conn.last_insert_id().expect("proposal id");
    conn.query_drop(format!(
        "INSERT INTO BLSession (proposalId, startDate, endDate, beamLineName, visit_number) \
         VALUES ({proposal}, {}, {}, {}, {})",
        visit.start,
        visit.end,
        quote(visit.instrument),
        visit.visit
    ))
    .await
    .expect("inserting a session");
    let session = conn.last_insert_id().expect("session id");
    for login in visit.people {
        add_person(conn, session, login).await;
    }
    session
}

/// Puts the person with `login` (made if missing) on the visit `session`.
pub async fn add_person(conn: &mut Conn, session: u64, login: &str) {
    let existing: Option<u64> = conn
        .exec_first("SELECT personId FROM Person WHERE login = ?", (login,))
        .await
        .expect("looking a person up");
    let person = match existing {
        Some(id) => id,
        None => {
            conn.exec_drop("INSERT INTO Person (login) VALUES (?)", (login,))
                .await
                .expect("inserting a person");
            conn.last_insert_id().expect("person id")
        }
    };
    conn.exec_drop(
        "INSERT INTO Session_has_Person (sessionId, personId, role) VALUES (?, ?, 'Co-Investigator')",
        (session, person),
    )
    .await
    .expect("inserting a session member");
}

/// Fills the tables with `visits` visits running now, each with `per_visit` people:
/// proposals `cm{20000 + v/5}`, visits 1–5 of each, on instruments `i01`..`i24`, people
/// `fed{00001..}` (`visits * per_visit / 5` of them, so each person is on five visits).
/// Multi-row INSERTs of 1,000 rows.
pub async fn generate(conn: &mut Conn, visits: usize, per_visit: usize) {
    let persons = (visits * per_visit / 5).max(per_visit);
    let batch = |table: &str, columns: &str, rows: Vec<String>| {
        let mut statements = Vec::new();
        for chunk in rows.chunks(1000) {
            statements.push(format!(
                "INSERT INTO {table} ({columns}) VALUES {}",
                chunk.join(",")
            ));
        }
        statements
    };
    let mut sql = Vec::new();
    sql.extend(batch(
        "Person",
        "personId, login",
        (1..=persons)
            .map(|p| format!("({p}, 'fed{p:05}')"))
            .collect(),
    ));
    let proposals = visits.div_ceil(5);
    sql.extend(batch(
        "Proposal",
        "proposalId, proposalCode, proposalNumber",
        (1..=proposals)
            .map(|p| format!("({p}, 'cm', '{}')", 20_000 + p))
            .collect(),
    ));
    sql.extend(batch(
        "BLSession",
        "sessionId, proposalId, startDate, endDate, beamLineName, visit_number",
        (0..visits)
            .map(|v| {
                format!(
                    "({}, {}, NOW() - INTERVAL 1 DAY, NOW() + INTERVAL 2 DAY, 'i{:02}', {})",
                    v + 1,
                    v / 5 + 1,
                    v % 24 + 1,
                    v % 5 + 1
                )
            })
            .collect(),
    ));
    let mut members = Vec::with_capacity(visits * per_visit);
    for v in 0..visits {
        for k in 0..per_visit {
            let person = (v * per_visit + k) % persons + 1;
            let mut row = String::new();
            let _ = write!(row, "({}, {person})", v + 1);
            members.push(row);
        }
    }
    sql.extend(batch("Session_has_Person", "sessionId, personId", members));
    for statement in sql {
        conn.query_drop(statement).await.expect("generating rows");
    }
}
