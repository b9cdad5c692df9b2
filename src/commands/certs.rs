//! `homestead certs`: writes a webhook CA and a serving certificate signed by it into a
//! directory (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::certs::generate_into;

/// `homestead certs`: writes a CA and a serving certificate signed by it.
#[derive(Debug, Clone, clap::Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key, tls.crt and tls.key into (created if missing).
    #[arg(long, env = "HOMESTEAD_CERTS_OUT", value_name = "DIR")]
    pub out: PathBuf,
    /// A DNS name for the serving certificate (repeatable), e.g.
    /// homestead.homestead.svc.
    #[arg(
        long = "dns",
        value_name = "NAME",
        env = "HOMESTEAD_CERTS_DNS",
        value_delimiter = ','
    )]
    pub dns: Vec<String>,
    /// An IP address for the serving certificate (repeatable). Without --dns and --ip:
    /// localhost and 127.0.0.1.
    #[arg(
        long = "ip",
        value_name = "IP",
        env = "HOMESTEAD_CERTS_IP",
        value_delimiter = ','
    )]
    pub ip: Vec<IpAddr>,
    /// Validity of both certificates, in days.
    #[arg(long, env = "HOMESTEAD_CERTS_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}

/// Runs `homestead certs`.
pub fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let validity = Duration::from_secs(u64::from(args.days) * 24 * 60 * 60);
    let (dns, ip) = if args.dns.is_empty() && args.ip.is_empty() {
        (
            vec!["localhost".to_owned()],
            vec![IpAddr::from([127, 0, 0, 1])],
        )
    } else {
        (args.dns, args.ip)
    };
    let paths = generate_into(&args.out, &dns, &ip, validity)?;
    for path in paths.all() {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
