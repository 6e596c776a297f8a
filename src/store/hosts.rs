//! libpq's multi-host connection URLs, which sqlx does not read:
//! `postgres://user@10.0.0.1:5432,10.0.0.2:5432/ledger?target_session_attrs=read-write` (the
//! form `pg_autoctl show uri` prints). The service connects to the first host, in the URL's
//! order, whose role `target_session_attrs` asks for, and follows the role when it moves: a
//! watcher asks the chosen host twice a second whether it still serves, and when it does not
//! (it died, or was demoted), finds the host that does and points the pool at it. Connections
//! to the old host are dead by then (a primary is demoted only through a restart), and each new
//! one — pooled, write, the projector's lock connection — goes to the new host.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// How often the watcher asks the chosen host whether it still serves.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// With `prefer-standby` served by a primary (no standby answered), how many probes pass
/// between two looks for a standby: a look opens a connection to every host.
const STANDBY_LOOK_EVERY: u32 = 20;
/// How long connecting to one host and asking its role may take before the next is tried.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// libpq's `target_session_attrs`: which server of the list a session wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAttrs {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
    /// A standby if one serves, else any server.
    PreferStandby,
}

/// What a server says of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// A standby (`pg_is_in_recovery()`).
    pub in_recovery: bool,
    /// Its sessions cannot write (`transaction_read_only`: a standby, or a primary set so).
    pub read_only: bool,
}

impl SessionAttrs {
    fn parse(value: &str) -> Result<SessionAttrs, sqlx::Error> {
        Ok(match value {
            "any" => SessionAttrs::Any,
            "read-write" => SessionAttrs::ReadWrite,
            "read-only" => SessionAttrs::ReadOnly,
            "primary" => SessionAttrs::Primary,
            "standby" => SessionAttrs::Standby,
            "prefer-standby" => SessionAttrs::PreferStandby,
            other => {
                return Err(config(format!(
                    "target_session_attrs={other} is none of any, read-write, read-only, \
                     primary, standby, prefer-standby"
                )))
            }
        })
    }

    /// Whether a server in `role` is what this asks for (for `PreferStandby`: a standby).
    pub fn accepts(self, role: Role) -> bool {
        match self {
            SessionAttrs::Any => true,
            SessionAttrs::ReadWrite => !role.read_only,
            SessionAttrs::ReadOnly => role.read_only,
            SessionAttrs::Primary => !role.in_recovery,
            SessionAttrs::Standby | SessionAttrs::PreferStandby => role.in_recovery,
        }
    }

    /// The passes over the host list: a preference falls back to any server.
    fn passes(self) -> Vec<SessionAttrs> {
        match self {
            SessionAttrs::PreferStandby => vec![SessionAttrs::Standby, SessionAttrs::Any],
            other => vec![other],
        }
    }
}

/// The hosts of one connection URL, in its order, and the role a session wants.
#[derive(Debug, Clone)]
pub struct Hosts {
    pub each: Vec<PgConnectOptions>,
    pub attrs: SessionAttrs,
}

fn config(message: String) -> sqlx::Error {
    sqlx::Error::Configuration(message.into())
}

/// One host of a host list: `name`, `name:port`, `[v6]` or `[v6]:port`.
fn host_and_port(spec: &str) -> Result<(String, Option<u16>), sqlx::Error> {
    let (name, port) = if let Some(v6) = spec.strip_prefix('[') {
        let (address, rest) = v6
            .split_once(']')
            .ok_or_else(|| config(format!("host {spec} opens '[' without closing it")))?;
        (address, rest.strip_prefix(':'))
    } else {
        match spec.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (spec, None),
        }
    };
    if name.is_empty() {
        return Err(config(format!("an empty host in the host list ({spec:?})")));
    }
    // An empty port (`host:`) is the default port, as in libpq.
    let port = port
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| config(format!("host {spec}: {p:?} is not a port number")))
        })
        .transpose()?;
    Ok((name.to_owned(), port))
}

/// The last value of a URL parameter (as in libpq, a later one overrides an earlier one).
fn last_value(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// A host of a list as the authority writes it: an IPv6 address in brackets, a socket folder
/// percent-encoded (sqlx decodes it), a name as it is.
fn authority_host(name: &str) -> String {
    if name.contains(':') {
        format!("[{name}]")
    } else if name.starts_with('/') {
        name.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    } else {
        name.to_owned()
    }
}

/// libpq's parameters for hosts and ports, `postgres:///ledger?host=h1,h2&port=5432,5433`,
/// turned into the authority's spelling (`h1:5432,h2:5433`). A parameter overrides only its
/// own part: `host=` the URL's host names (whose port stays the default), `port=` their ports;
/// `port` holds one port for every host or one per host. Answers `None` (and leaves the
/// parameters to sqlx) unless either holds a list.
fn host_list_from_query(
    pairs: &mut Vec<(String, String)>,
    authority: &str,
) -> Result<Option<String>, sqlx::Error> {
    let (hosts, ports) = (last_value(pairs, "host"), last_value(pairs, "port"));
    let listed = |value: &Option<String>| value.as_ref().is_some_and(|v| v.contains(','));
    if !listed(&hosts) && !listed(&ports) {
        return Ok(None);
    }
    let from_authority = authority
        .split(',')
        .filter(|_| !authority.is_empty())
        .map(host_and_port)
        .collect::<Result<Vec<_>, _>>()?;
    let specs: Vec<(String, Option<String>)> = match &hosts {
        Some(hosts) => {
            // The URL's one port, if it gave one, goes with every host the parameter names.
            let port = match from_authority.as_slice() {
                [(_, Some(port))] => Some(port.to_string()),
                _ => None,
            };
            let names = hosts.split(',').map(|n| (authority_host(n), port.clone()));
            names.collect()
        }
        None => from_authority
            .into_iter()
            .map(|(name, port)| (authority_host(&name), port.map(|p| p.to_string())))
            .collect(),
    };
    let ports: Vec<String> =
        ports.map_or_else(Vec::new, |p| p.split(',').map(str::to_owned).collect());
    if ports.len() > 1 && ports.len() != specs.len() {
        return Err(config(format!(
            "{} ports for {} hosts: give one port for all, or one per host",
            ports.len(),
            specs.len()
        )));
    }
    let list = specs
        .into_iter()
        .enumerate()
        .map(|(n, (host, own))| {
            let port = ports.get(n).or(ports.first()).cloned().or(own);
            format!("{host}:{}", port.unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join(",");
    pairs.retain(|(k, _)| k != "host" && k != "port");
    Ok(Some(list))
}

/// The URL of one host of a list: a name, an IPv6 address (which sqlx would keep in brackets)
/// or a Unix socket's folder (percent-encoded, as sqlx reads it).
fn url_of_host(
    (scheme, user, path, query): (&str, &str, &str, &str),
    (name, port): (String, Option<u16>),
) -> Result<PgConnectOptions, sqlx::Error> {
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    if name.contains(':') {
        let url = format!("{scheme}://{user}[{name}]{port}{path}{query}");
        return url.parse::<PgConnectOptions>().map(|o| o.host(&name));
    }
    format!("{scheme}://{user}{name}{port}{path}{query}").parse()
}

impl Hosts {
    /// Reads a URL with one host or libpq's comma-separated list of them (in the authority, or
    /// in `host=` and `port=` parameters). Everything but the host list and
    /// `target_session_attrs` is read by sqlx, as for any URL.
    pub fn parse(url: &str) -> Result<Hosts, sqlx::Error> {
        // A fragment is no part of a connection URL (the URL parser drops it).
        let url = url.split_once('#').map_or(url, |(url, _)| url);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| config("a database URL starts with postgres://".to_owned()))?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (user, host_list) = match authority.rsplit_once('@') {
            Some((user, hosts)) => (format!("{user}@"), hosts.to_owned()),
            None => (String::new(), authority.to_owned()),
        };
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| config(format!("the URL's parameters: {e}")))?;
        let attrs = match last_value(&pairs, "target_session_attrs") {
            Some(value) => SessionAttrs::parse(&value)?,
            None => SessionAttrs::Any,
        };
        pairs.retain(|(k, _)| k != "target_session_attrs");
        let host_list = host_list_from_query(&mut pairs, &host_list)?.unwrap_or(host_list);
        let query = if pairs.is_empty() {
            String::new()
        } else {
            let encoded = serde_urlencoded::to_string(&pairs)
                .map_err(|e| config(format!("the URL's parameters: {e}")))?;
            format!("?{encoded}")
        };
        if !host_list.contains(',') {
            let one = format!("{scheme}://{user}{host_list}{path}{query}").parse()?;
            return Ok(Hosts {
                each: vec![one],
                attrs,
            });
        }
        // One URL per host, read by sqlx as a whole: the password file (~/.pgpass) is looked
        // up for each host and port.
        let each = host_list
            .split(',')
            .map(|spec| url_of_host((scheme, &user, path, &query), host_and_port(spec)?))
            .collect::<Result<Vec<PgConnectOptions>, _>>()?;
        Ok(Hosts { each, attrs })
    }

    /// Whether there is anything to choose or follow: more than one host, or one host that
    /// must be in a given role.
    pub fn needs_watching(&self) -> bool {
        self.each.len() > 1 || self.attrs != SessionAttrs::Any
    }

    /// The first host, in the URL's order, that serves as asked now (for a preference: the
    /// first standby, else the first that answers). Fails as unavailable when none does.
    pub async fn find(&self) -> Result<PgConnectOptions, sqlx::Error> {
        let mut refusals = Vec::new();
        for pass in self.attrs.passes() {
            for options in &self.each {
                match role_of(options).await {
                    Ok(role) if pass.accepts(role) => return Ok(options.clone()),
                    Ok(role) => refusals.push(format!("{}: {role:?}", address(options))),
                    Err(error) => refusals.push(format!("{}: {error}", address(options))),
                }
            }
        }
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            format!(
                "no database host serves as {:?} now ({})",
                self.attrs,
                refusals.join("; ")
            ),
        )))
    }
}

/// `host:port` of one host, for the log.
pub fn address(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// The role of the server a connection is on.
pub async fn role_on(connection: &mut PgConnection) -> Result<Role, sqlx::Error> {
    let (in_recovery, read_only): (bool, bool) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
    )
    .fetch_one(connection)
    .await?;
    Ok(Role {
        in_recovery,
        read_only,
    })
}

fn timed_out() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the host did not answer in time",
    ))
}

/// Refuses a new connection whose server is not in the role `attrs` asks for (a preference
/// takes any): between a failover and the watcher's next look, a connection could otherwise
/// land on a standby and stay in the pool.
pub async fn check_role(
    connection: &mut PgConnection,
    attrs: SessionAttrs,
) -> Result<(), sqlx::Error> {
    let role = role_on(connection).await?;
    if attrs == SessionAttrs::PreferStandby || attrs.accepts(role) {
        return Ok(());
    }
    Err(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("the database host is no longer what target_session_attrs asks for ({role:?})"),
    )))
}

/// Connects to one host and asks its role, within [`PROBE_TIMEOUT`].
async fn role_of(options: &PgConnectOptions) -> Result<Role, sqlx::Error> {
    let asked = async {
        let mut connection = options.connect().await?;
        let role = role_on(&mut connection).await;
        let _ = connection.close().await;
        role
    };
    tokio::time::timeout(PROBE_TIMEOUT, asked)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

/// Keeps `pool` on a host that serves as `hosts` asks, until the pool is closed: see the
/// module's documentation. `chosen` is the host the pool connects to now.
pub fn follow(hosts: Hosts, pool: PgPool, chosen: PgConnectOptions) {
    tokio::spawn(async move {
        let mut watched = Watched {
            chosen,
            probe: None,
            probes: 0,
        };
        while !pool.is_closed() {
            tokio::time::sleep(PROBE_EVERY).await;
            if watched.still_serves(hosts.attrs).await {
                continue;
            }
            match hosts.find().await {
                Ok(found) if address(&found) != address(&watched.chosen) => {
                    tracing::warn!(
                        from = %address(&watched.chosen),
                        to = %address(&found),
                        "the database host serving as {:?} moved; new connections go to it",
                        hosts.attrs
                    );
                    pool.set_connect_options(found.clone());
                    watched.chosen = found;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "no database host serves now"),
            }
        }
    });
}

/// The host the pool is on, and a connection kept to ask it.
struct Watched {
    chosen: PgConnectOptions,
    probe: Option<PgConnection>,
    probes: u32,
}

impl Watched {
    /// Whether the chosen host still serves as asked. A preference served by a primary counts
    /// as served but for every [`STANDBY_LOOK_EVERY`]th probe, when a standby is looked for.
    async fn still_serves(&mut self, attrs: SessionAttrs) -> bool {
        self.probes = self.probes.wrapping_add(1);
        let asked = async {
            if self.probe.is_none() {
                self.probe = Some(self.chosen.connect().await?);
            }
            match self.probe.as_mut() {
                Some(probe) => role_on(probe).await,
                None => Err(timed_out()),
            }
        };
        match tokio::time::timeout(PROBE_TIMEOUT, asked).await {
            Ok(Ok(role)) if attrs == SessionAttrs::PreferStandby && !role.in_recovery => {
                !self.probes.is_multiple_of(STANDBY_LOOK_EVERY)
            }
            Ok(Ok(role)) => attrs.accepts(role),
            Ok(Err(_)) | Err(_) => {
                self.probe = None;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_list_gives_one_set_of_options_per_host_in_order() {
        let hosts = Hosts::parse(
            "postgres://autoctl:s%40cret@127.0.0.1:56101,[::1]:56102,db3/ledger\
             ?target_session_attrs=read-write&sslmode=disable&application_name=x",
        )
        .expect("a multi-host URL");
        assert_eq!(hosts.attrs, SessionAttrs::ReadWrite);
        let empty_port = Hosts::parse("postgres://u@h1:,h2:6000/db").expect("an empty port");
        assert_eq!(address(&empty_port.each[0]), "h1:5432");
        let found: Vec<String> = hosts.each.iter().map(address).collect();
        assert_eq!(found, ["127.0.0.1:56101", "::1:56102", "db3:5432"]);
        for options in &hosts.each {
            assert_eq!(options.get_username(), "autoctl");
            assert_eq!(options.get_database(), Some("ledger"));
            assert_eq!(options.get_application_name(), Some("x"));
        }
    }

    #[test]
    fn host_lists_in_parameters_and_socket_folders_read_as_libpq_reads_them() {
        let hosts = Hosts::parse(
            "postgres://u@/ledger?host=10.0.0.1,10.0.0.2&port=5433,5434\
             &target_session_attrs=primary&application_name=y",
        )
        .expect("host= and port= lists");
        let found: Vec<String> = hosts.each.iter().map(address).collect();
        assert_eq!(found, ["10.0.0.1:5433", "10.0.0.2:5434"]);
        assert_eq!(hosts.attrs, SessionAttrs::Primary);
        assert_eq!(hosts.each[1].get_database(), Some("ledger"));
        assert_eq!(hosts.each[1].get_application_name(), Some("y"));
        let one_port = Hosts::parse("postgres:///db?host=a%2Cb&port=6000").expect("one port");
        let found: Vec<String> = one_port.each.iter().map(address).collect();
        assert_eq!(found, ["a:6000", "b:6000"]);
        let sockets =
            Hosts::parse("postgres://u@%2Fvar%2Frun%2Fpostgresql,%2Ftmp:5433/db").expect("sockets");
        let folders: Vec<_> = sockets
            .each
            .iter()
            .map(|o| o.get_socket().cloned())
            .collect();
        assert_eq!(
            folders,
            [Some("/var/run/postgresql".into()), Some("/tmp".into())]
        );
        assert_eq!(sockets.each[1].get_port(), 5433);
        let error = Hosts::parse("postgres:///db?host=a,b,c&port=1,2").expect_err("2 ports");
        assert!(error.to_string().contains("one per host"), "{error}");
        // A parameter overrides only its own part, and the last of two copies counts.
        let cases = [
            ("postgres://u@h0:6000/db?host=a,b", vec!["a:6000", "b:6000"]),
            (
                "postgres://u@h1,h2:7000/db?port=6000,6001",
                vec!["h1:6000", "h2:6001"],
            ),
            (
                // As in libpq, `port=` replaces the URL's ports as a whole.
                "postgres://u@h1,h2:7000/db?port=6000",
                vec!["h1:6000", "h2:6000"],
            ),
            (
                "postgres://u@/db?host=%2Frun%2Fa%20b,::1&port=5",
                vec!["localhost:5", "::1:5"],
            ),
        ];
        for (url, expected) in cases {
            let found: Vec<String> = Hosts::parse(url)
                .expect(url)
                .each
                .iter()
                .map(address)
                .collect();
            assert_eq!(found, expected, "{url}");
        }
        let socket =
            Hosts::parse("postgres://u@/db?host=%2Frun%2Fa%20b,h&port=5").expect("a socket");
        assert_eq!(socket.each[0].get_socket(), Some(&"/run/a b".into()));
        let twice = Hosts::parse(
            "postgres://u@h1,h2/db?target_session_attrs=any&target_session_attrs=primary#frag",
        )
        .expect("two attrs and a fragment");
        assert_eq!(twice.attrs, SessionAttrs::Primary);
        let fragment = Hosts::parse("postgres://u@h/db?sslmode=require#x").expect("a fragment");
        assert_eq!(address(&fragment.each[0]), "h:5432");
    }

    #[test]
    fn a_single_host_reads_as_before_and_needs_no_watching() {
        let hosts =
            Hosts::parse("postgres://postgres@127.0.0.1:55963/studyledger").expect("a plain URL");
        assert_eq!(hosts.each.len(), 1);
        assert_eq!(address(&hosts.each[0]), "127.0.0.1:55963");
        assert!(!hosts.needs_watching());
        let one_primary =
            Hosts::parse("postgres://u@h:1/db?target_session_attrs=primary").expect("one host");
        assert!(one_primary.needs_watching());
    }

    #[test]
    fn bad_host_lists_and_attrs_are_refused_with_the_reason() {
        for (url, reason) in [
            ("postgres://u@h1:5432,h2:x/db", "not a port number"),
            ("postgres://u@h1:5432,h2:70000/db", "not a port number"),
            ("postgres://u@h1,,h2/db", "empty host"),
            ("postgres://u@[::1,h2/db", "without closing"),
            (
                "postgres://u@h1,h2/db?target_session_attrs=leader",
                "none of",
            ),
            ("127.0.0.1:5432", "starts with postgres://"),
        ] {
            let error = Hosts::parse(url).expect_err(url).to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }

    #[test]
    fn each_attr_accepts_the_roles_libpq_would() {
        let primary = Role {
            in_recovery: false,
            read_only: false,
        };
        let standby = Role {
            in_recovery: true,
            read_only: true,
        };
        let read_only_primary = Role {
            in_recovery: false,
            read_only: true,
        };
        let cases = [
            (SessionAttrs::Any, [true, true, true]),
            (SessionAttrs::ReadWrite, [true, false, false]),
            (SessionAttrs::ReadOnly, [false, true, true]),
            (SessionAttrs::Primary, [true, false, true]),
            (SessionAttrs::Standby, [false, true, false]),
            (SessionAttrs::PreferStandby, [false, true, false]),
        ];
        for (attrs, expected) in cases {
            let got = [primary, standby, read_only_primary].map(|r| attrs.accepts(r));
            assert_eq!(got, expected, "{attrs:?}");
        }
        assert_eq!(
            SessionAttrs::PreferStandby.passes(),
            [SessionAttrs::Standby, SessionAttrs::Any]
        );
    }
}
