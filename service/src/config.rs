//! Command-line flags and environment variables.

use std::path::PathBuf;

/// The usage text printed by `--help` and on a bad flag.
pub(crate) const USAGE: &str = "\
usage: profile-service [options]

  --schema FILE          the store's schema (ListTraitGroups JSON); default: the bundled service/schema.json
  --port N               port on 127.0.0.1 (0 picks a free one); default 8080
  --store-id ID          the one store served; default mem_store_00000000000000000000000000
  --data-dir DIR         where the durable operation log lives; default ./profile-service-data
  --in-memory            keep nothing on disk: NOT durable, everything is lost on exit
  --postgres URL         keep everything in PostgreSQL instead of --data-dir (URL like
                         postgresql://user:password@host:5432/db); any number of instances may share it
  --postgres-pool N      connections to PostgreSQL per instance; default 16
  --account-sid SID      HTTP Basic user name; default $TWILIO_ACCOUNT_SID (required without --credentials)
  --auth-token TOKEN     HTTP Basic password; default $TWILIO_AUTH_TOKEN (required without --credentials)
  --credentials FILE     more keys, each limited to some stores: a JSON array of
                         {\"sid\": \"SK...\", \"secret\": \"...\", \"stores\": [\"mem_store_...\"]}
  --rate-limit N/s       at most N requests a second per key (429 past it); default: no limit
  --max-queued-writes N  writes waiting to be made durable past which writes get 503; default 4096
  --max-body-bytes N     larger request bodies are refused with 400; default 1048576
  --compact-log-bytes N  snapshot and cut the log short when it passes N bytes; default 67108864
  --test-faults          (tests only) enable /__test/panic and /__test/faults
";

/// The service's settings.
#[derive(Clone)]
pub(crate) struct Config {
    /// The schema file, or `None` for the bundled one.
    pub(crate) schema: Option<PathBuf>,
    /// The port to listen on, on 127.0.0.1.
    pub(crate) port: u16,
    /// The one store id served.
    pub(crate) store_id: String,
    /// The directory of the durable log, or `None` in memory mode.
    pub(crate) data_dir: Option<PathBuf>,
    /// The HTTP Basic user name of the key that may use every store (with `auth_token`).
    pub(crate) account_sid: Option<String>,
    /// The HTTP Basic password of that key.
    pub(crate) auth_token: Option<String>,
    /// The file of more keys, each limited to some stores.
    pub(crate) credentials: Option<PathBuf>,
    /// Requests a second per key, if limited.
    pub(crate) rate_limit: Option<u32>,
    /// Writes waiting to be made durable past which writes are refused with 503.
    pub(crate) max_queued_writes: usize,
    /// Whether the test-only fault routes are enabled.
    pub(crate) test_faults: bool,
    /// The PostgreSQL URL, when the storage is PostgreSQL.
    pub(crate) postgres: Option<String>,
    /// Connections to PostgreSQL per instance.
    pub(crate) postgres_pool: usize,
    /// The largest request body accepted, in bytes.
    pub(crate) max_body_bytes: usize,
    /// The log size past which it is snapshotted and cut short while running.
    pub(crate) compact_log_bytes: u64,
}

/// Everything but the auth token, which is a secret.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("schema", &self.schema)
            .field("port", &self.port)
            .field("store_id", &self.store_id)
            .field("data_dir", &self.data_dir)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("credentials", &self.credentials)
            .field("rate_limit", &self.rate_limit)
            .field("max_queued_writes", &self.max_queued_writes)
            .field("test_faults", &self.test_faults)
            .field("postgres", &self.postgres.as_ref().map(|_| "<redacted>"))
            .field("postgres_pool", &self.postgres_pool)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("compact_log_bytes", &self.compact_log_bytes)
            .finish()
    }
}

impl Config {
    /// Reads the flags `args` (without the program name) and the environment through `env`.
    ///
    /// # Errors
    ///
    /// A message for an unknown flag, a missing or malformed value, or missing credentials
    /// (neither the SID and token pair nor `--credentials`);
    /// `Err(None)` for `--help`.
    pub(crate) fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, Option<String>> {
        let mut schema = None;
        let mut port = 8080;
        let mut store_id = "mem_store_00000000000000000000000000".to_owned();
        let mut data_dir = Some(PathBuf::from("profile-service-data"));
        let mut in_memory = false;
        let mut account_sid = None;
        let mut auth_token = None;
        let mut max_body_bytes = 1 << 20;
        let mut compact_log_bytes = 64 << 20;
        let mut credentials = None;
        let mut rate_limit = None;
        let mut max_queued_writes = 4096;
        let mut test_faults = false;
        let mut postgres = None;
        let mut postgres_pool = 16;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(None);
            }
            if flag == "--in-memory" {
                in_memory = true;
                continue;
            }
            if flag == "--test-faults" {
                test_faults = true;
                continue;
            }
            let value = args
                .next()
                .ok_or_else(|| Some(format!("`{flag}` needs a value")))?;
            let number = |what: &str| format!("`{flag}`: `{value}` is not {what}");
            match flag.as_str() {
                "--schema" => schema = Some(PathBuf::from(value)),
                "--port" => port = value.parse().map_err(|_| Some(number("a port")))?,
                "--store-id" => store_id = value,
                "--postgres" => postgres = Some(value),
                "--postgres-pool" => {
                    postgres_pool = value
                        .parse()
                        .ok()
                        .filter(|&n: &usize| n > 0)
                        .ok_or_else(|| Some(number("a count")))?;
                }
                "--data-dir" => data_dir = Some(PathBuf::from(value)),
                "--account-sid" => account_sid = Some(value),
                "--auth-token" => auth_token = Some(value),
                "--max-body-bytes" => {
                    max_body_bytes = value.parse().map_err(|_| Some(number("a size")))?;
                }
                "--credentials" => credentials = Some(PathBuf::from(value)),
                "--rate-limit" => {
                    let n = value.strip_suffix("/s").unwrap_or(&value);
                    rate_limit = Some(
                        n.parse()
                            .ok()
                            .filter(|&n: &u32| n > 0)
                            .ok_or_else(|| Some(number("a rate like `100/s`")))?,
                    );
                }
                "--max-queued-writes" => {
                    max_queued_writes = value.parse().map_err(|_| Some(number("a count")))?;
                }
                "--compact-log-bytes" => {
                    compact_log_bytes = value.parse().map_err(|_| Some(number("a size")))?;
                }
                _ => return Err(Some(format!("unknown flag `{flag}`"))),
            }
        }
        let account_sid = account_sid
            .or_else(|| env("TWILIO_ACCOUNT_SID"))
            .filter(|s| !s.is_empty());
        let auth_token = auth_token
            .or_else(|| env("TWILIO_AUTH_TOKEN"))
            .filter(|s| !s.is_empty());
        if credentials.is_none() {
            if account_sid.is_none() {
                return Err(Some(
                    "no account SID: pass --account-sid or set TWILIO_ACCOUNT_SID (or use --credentials)"
                        .to_owned(),
                ));
            }
            if auth_token.is_none() {
                return Err(Some(
                    "no auth token: pass --auth-token or set TWILIO_AUTH_TOKEN (or use --credentials)"
                        .to_owned(),
                ));
            }
        }
        if account_sid.is_some() != auth_token.is_some() {
            return Err(Some(
                "an account SID and an auth token go together: give both or neither".to_owned(),
            ));
        }
        if in_memory && postgres.is_some() {
            return Err(Some(
                "--in-memory and --postgres exclude each other".to_owned(),
            ));
        }
        if in_memory || postgres.is_some() {
            data_dir = None;
        }
        Ok(Config {
            schema,
            port,
            store_id,
            data_dir,
            account_sid,
            auth_token,
            credentials,
            rate_limit,
            max_queued_writes,
            test_faults,
            postgres,
            postgres_pool,
            max_body_bytes,
            compact_log_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_show_the_token() {
        let args = ["--auth-token", "s3cret-token", "--account-sid", "ACx"].map(String::from);
        let config = Config::parse(args, |_| None).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains(r#"auth_token: "<redacted>""#), "{shown}");
    }

    #[test]
    fn protection_flags() {
        let parse = |args: &[&str]| Config::parse(args.iter().map(|s| s.to_string()), |_| None);
        let config = parse(&["--credentials", "keys.json", "--rate-limit", "5/s"]).unwrap();
        assert_eq!(config.account_sid, None);
        assert_eq!(config.rate_limit, Some(5));
        assert_eq!(config.max_queued_writes, 4096);
        assert!(!config.test_faults);
        let config = parse(&["--account-sid", "AC", "--auth-token", "t", "--test-faults"]).unwrap();
        assert!(config.test_faults);
        assert_eq!(config.rate_limit, None);
        for bad in [
            &[
                "--account-sid",
                "AC",
                "--auth-token",
                "t",
                "--rate-limit",
                "0/s",
            ][..],
            &[
                "--account-sid",
                "AC",
                "--auth-token",
                "t",
                "--rate-limit",
                "x/s",
            ],
            &["--account-sid", "AC"],
            &["--credentials", "k.json", "--auth-token", "t"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn postgres_replaces_the_data_dir() {
        let parse = |args: &[&str]| Config::parse(args.iter().map(|s| s.to_string()), |_| None);
        let base = ["--account-sid", "AC", "--auth-token", "t"];
        let config = parse(&[&base[..], &["--postgres", "postgresql://h/db"]].concat()).unwrap();
        assert_eq!(config.postgres.as_deref(), Some("postgresql://h/db"));
        assert_eq!(config.data_dir, None);
        assert_eq!(config.postgres_pool, 16);
        assert!(!format!("{config:?}").contains("postgresql://h/db"));
        let both = [
            &base[..],
            &["--postgres", "postgresql://h/db", "--in-memory"],
        ]
        .concat();
        assert!(parse(&both).is_err());
        assert!(parse(&[&base[..], &["--postgres-pool", "0"]].concat()).is_err());
        assert_eq!(parse(&base).unwrap().postgres, None);
    }
}
