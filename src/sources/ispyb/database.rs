//! Reading ISPyB: connect (TLS when the URL asks), compute the window on the database's own
//! clock, check that each query returns the columns it must, and read the visits and their
//! people in one read-only, consistent snapshot.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, SslOpts, Statement, TxOpts, Value};

use homestead_core::config::{IspybConfig, MEMBER_COLUMNS, SessionSourceConfig};
use homestead_core::sources::ispyb::{Cell, DateTime, PersonRow, VisitRow, Window};

/// How long connecting (TCP, TLS, authentication) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading everything may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything one sync reads from the database.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// `[now - after, now + before]` on the database's clock.
    pub window: Window,
    /// Rows of the sessions query.
    pub visits: Vec<VisitRow>,
    /// Rows of the members query.
    pub people: Vec<PersonRow>,
}

/// Connects, reads the window, the visits and their people, and disconnects. Nothing is
/// returned unless everything was read.
pub async fn fetch(source: &SessionSourceConfig) -> Result<Fetched> {
    let ispyb = &source.ispyb;
    let opts = options(ispyb)?;
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts))
        .await
        .map_err(|_| anyhow!("timed out after {CONNECT_TIMEOUT:?}"))
        .and_then(|c| c.map_err(anyhow::Error::from))
        .with_context(|| format!("connecting to {}", ispyb.url))?;
    let result = tokio::time::timeout(READ_TIMEOUT, read(&mut conn, source))
        .await
        .unwrap_or_else(|_| Err(anyhow!("reading took longer than {READ_TIMEOUT:?}")))
        .with_context(|| format!("reading visits from {}", ispyb.url));
    // Closing is best effort: the data is read (or the error is what matters).
    let _ = conn.disconnect().await;
    result
}

/// Connection options: the URL, the password from its file, the CA file for TLS.
fn options(ispyb: &IspybConfig) -> Result<Opts> {
    let url = Opts::from_url(&ispyb.url)
        .map_err(|e| anyhow!("sessionSource.ispyb.url {:?}: {e}", ispyb.url))?;
    let mut builder = OptsBuilder::from_opts(url.clone());
    if let Some(path) = &ispyb.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading sessionSource.ispyb.passwordFile {path}"))?;
        builder = builder.pass(Some(text.trim_end_matches(['\n', '\r']).to_owned()));
    }
    if let Some(ca) = &ispyb.ca_file {
        // A CA file means TLS, verified against it (and the built-in roots).
        let ssl = url
            .ssl_opts()
            .cloned()
            .unwrap_or_else(SslOpts::default)
            .with_root_certs(vec![PathBuf::from(ca).into()]);
        builder = builder.ssl_opts(ssl);
    }
    Ok(builder.into())
}

async fn read(conn: &mut Conn, source: &SessionSourceConfig) -> Result<Fetched> {
    let ispyb = &source.ispyb;
    let mut options = TxOpts::new();
    options.with_consistent_snapshot(true).with_readonly(true);
    let mut tx = conn
        .start_transaction(options)
        .await
        .context("starting a read-only transaction")?;

    // The window on the database's clock: its dates are in its own (the facility's) time.
    let bounds: Option<Row> = tx
        .exec_first(
            "SELECT NOW() - INTERVAL ? SECOND, NOW() + INTERVAL ? SECOND",
            (ispyb.window.after.as_secs(), ispyb.window.before.as_secs()),
        )
        .await
        .context("computing the window")?;
    let bounds = bounds.context("computing the window: no row")?;
    let window = Window {
        start: date(bounds.as_ref(0)).context("the window's start")?,
        end: date(bounds.as_ref(1)).context("the window's end")?,
    };
    tx.exec_drop(
        "SET @windowStart = ?, @windowEnd = ?",
        (value(window.start), value(window.end)),
    )
    .await
    .context("setting @windowStart and @windowEnd")?;

    let session_columns = source.session_columns();
    let sessions = prepare(
        &mut tx,
        "sessions",
        ispyb.queries.sessions(),
        &session_columns,
    )
    .await?;
    let rows: Vec<Row> = tx
        .exec(&sessions.statement, ())
        .await
        .context("running queries.sessions")?;
    let visits = rows
        .iter()
        .map(|row| {
            let cell = |i: usize| cell(row.as_ref(sessions.index[i]));
            VisitRow {
                session_id: cell(0),
                proposal_code: cell(1),
                proposal_number: cell(2),
                visit: cell(3),
                instrument: cell(4),
                start_date: cell(5),
                end_date: cell(6),
                gid: sessions
                    .index
                    .get(7)
                    .map_or(Cell::Null, |&i| self::cell(row.as_ref(i))),
            }
        })
        .collect();

    let members = prepare(&mut tx, "members", ispyb.queries.members(), MEMBER_COLUMNS).await?;
    let rows: Vec<Row> = tx
        .exec(&members.statement, ())
        .await
        .context("running queries.members")?;
    let people = rows
        .iter()
        .map(|row| PersonRow {
            session_id: cell(row.as_ref(members.index[0])),
            login: cell(row.as_ref(members.index[1])),
        })
        .collect();
    // Read-only: nothing to commit, but ending the transaction cleanly is polite.
    let _ = tx.rollback().await;
    Ok(Fetched {
        window,
        visits,
        people,
    })
}

/// A prepared query and where each required column is in its rows.
struct Prepared {
    statement: Statement,
    index: Vec<usize>,
}

/// Prepares `query` and finds each of `required` among the columns it returns (names
/// compared as MySQL does, ignoring case), or says which are missing.
async fn prepare(
    tx: &mut mysql_async::Transaction<'_>,
    which: &str,
    query: &str,
    required: &[&str],
) -> Result<Prepared> {
    let statement = tx
        .prep(query)
        .await
        .with_context(|| format!("preparing sessionSource.ispyb.queries.{which}"))?;
    let columns = statement.columns();
    let names: Vec<Cow<'_, str>> = columns.iter().map(|c| c.name_str()).collect();
    let mut index = Vec::with_capacity(required.len());
    let mut missing = Vec::new();
    for want in required {
        match names.iter().position(|n| n.eq_ignore_ascii_case(want)) {
            Some(i) => index.push(i),
            None => missing.push(*want),
        }
    }
    if !missing.is_empty() {
        bail!(
            "sessionSource.ispyb.queries.{which} returns no column named {} (it returns: {}); \
             name the columns with AS",
            missing.join(", "),
            names.join(", ")
        );
    }
    Ok(Prepared { statement, index })
}

/// A database value as the mapping reads it.
fn cell(value: Option<&Value>) -> Cell {
    match value {
        None | Some(Value::NULL) => Cell::Null,
        Some(Value::Int(n)) => Cell::Int(*n),
        Some(Value::UInt(n)) => Cell::UInt(*n),
        Some(Value::Bytes(bytes)) => match std::str::from_utf8(bytes) {
            Ok(text) => Cell::Text(text.to_owned()),
            Err(_) => Cell::Other(format!("{} bytes that are not UTF-8", bytes.len())),
        },
        Some(Value::Date(year, month, day, hour, minute, second, _)) => Cell::DateTime(DateTime {
            year: *year,
            month: *month,
            day: *day,
            hour: *hour,
            minute: *minute,
            second: *second,
        }),
        Some(Value::Float(f)) => Cell::Other(format!("float {f}")),
        Some(Value::Double(f)) => Cell::Other(format!("double {f}")),
        Some(Value::Time(negative, days, hours, minutes, seconds, _)) => Cell::Other(format!(
            "time {}{}d {hours:02}:{minutes:02}:{seconds:02}",
            if *negative { "-" } else { "" },
            days
        )),
    }
}

/// A window bound read back from the database.
fn date(value: Option<&Value>) -> Result<DateTime> {
    match cell(value) {
        Cell::DateTime(d) if d.is_valid() => Ok(d),
        Cell::Text(t) => DateTime::parse(&t).with_context(|| format!("{t:?} is not a date")),
        other => bail!("{other} is not a date"),
    }
}

/// A date as a query parameter.
fn value(d: DateTime) -> Value {
    Value::Date(d.year, d.month, d.day, d.hour, d.minute, d.second, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_cells_as_read() {
        let cases = [
            (Value::NULL, Cell::Null),
            (Value::Int(-3), Cell::Int(-3)),
            (Value::UInt(7), Cell::UInt(7)),
            (Value::Bytes(b"cm".to_vec()), Cell::Text("cm".into())),
            (
                Value::Bytes(vec![0xff, 0xfe]),
                Cell::Other("2 bytes that are not UTF-8".into()),
            ),
            (Value::Double(1.5), Cell::Other("double 1.5".into())),
            (
                Value::Date(2024, 3, 15, 9, 0, 0, 0),
                Cell::DateTime(DateTime::parse("2024-03-15 09:00:00").unwrap()),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(cell(Some(&value)), want, "{value:?}");
        }
        assert_eq!(cell(None), Cell::Null);
    }

    #[test]
    fn the_password_comes_from_its_file_and_a_ca_file_means_tls() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("pw");
        std::fs::write(&password, "s3cret\n").unwrap();
        let mut ispyb: IspybConfig =
            serde_saphyr::from_str("url: mysql://reader@db:3306/ispyb").unwrap();
        ispyb.password_file = Some(password.display().to_string());
        let opts = options(&ispyb).unwrap();
        assert_eq!(opts.user(), Some("reader"));
        assert_eq!(opts.pass(), Some("s3cret"));
        assert_eq!(opts.db_name(), Some("ispyb"));
        assert!(opts.ssl_opts().is_none());

        ispyb.ca_file = Some("/etc/ispyb-ca.pem".into());
        assert!(options(&ispyb).unwrap().ssl_opts().is_some());

        ispyb.password_file = Some(dir.path().join("missing").display().to_string());
        let err = options(&ispyb).unwrap_err();
        assert!(format!("{err:#}").contains("passwordFile"), "{err:#}");
    }
}
