//! Pooled SSH connections: one per (address, user, host name, credential, route) until its
//! session slots are full, then another; idle ones close, broken ones are replaced.
//!
//! Jump hosts: a hop is just another pooled connection. A target behind hops is an SSH
//! session carried over a `direct-tcpip` channel of the last hop's connection (chained for
//! several hops); one connection to a bastion carries the tunnels to every target behind
//! it, and stays open while any tunnel uses it. Each hop's and the target's host key is
//! checked against its own known_hosts entry; errors name the hop.
//!
//! Owns: connect (exact address, timeout, peer check), per-connection session semaphores
//! (sshd refuses sessions over MaxSessions at once, nothing queues), serialized connection
//! creation per key, the idle reaper. Never runs a command itself (that is `exec.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use dashmap::DashMap;
use russh::client::{self, Handle};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connect::connect;
use super::exec::{self, ExecOutcome, Sink};
use super::{SshError, Verifier};
use crate::config::Credential;
use crate::net::Target;
use crate::tasks::lock;

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_sessions_per_connection: usize,
    pub idle: Duration,
    pub keepalive: Duration,
    /// Handshakes (TCP + SSH + auth) in progress at once, across every host.
    pub max_concurrent_handshakes: usize,
}

/// (address, user, host name, credential, aliases of the hops on the way).
pub(super) type Key = (SocketAddr, String, String, String, String);

/// A session channel, the connection carrying it, and the slot it holds there.
pub(super) type SessionChannel = (russh::Channel<client::Msg>, Arc<Conn>, OwnedSemaphorePermit);

/// A jump host and how to log in to it; a route lists them first hop first.
pub type Hop = (Target, Credential);

/// Where a session goes: through `route`'s jump hosts to `target` as `cred`, each host key
/// checked against `known_hosts`, each connect bounded by `connect_timeout`.
#[derive(Clone, Copy)]
pub struct Destination<'a> {
    pub route: &'a [Hop],
    pub target: &'a Target,
    pub cred: &'a Credential,
    pub known_hosts: &'a Path,
    pub connect_timeout: Duration,
}

impl Destination<'_> {
    pub(super) fn key(&self) -> Key {
        key_of(self.target, self.cred, self.route)
    }
}

pub(super) fn key_of(target: &Target, cred: &Credential, route: &[Hop]) -> Key {
    let via = route.iter().map(|(t, _)| t.alias.as_str()).collect::<Vec<_>>().join(",");
    (target.addr, cred.username.clone(), target.host_name.clone(), cred.name.clone(), via)
}

pub(super) struct Conn {
    pub(super) alias: String,
    pub(super) handle: Handle<Verifier>,
    slots: Arc<Semaphore>,
    /// Slots given up because the server refused a session on them (its MaxSessions is
    /// below ours): they never come back, and idle means every other slot is free.
    refused: AtomicUsize,
    pub(super) last_used: Mutex<Instant>,
    /// Connections tunnelled through this one: it stays open while any is.
    tunnels: AtomicUsize,
    /// The hop this connection is carried by, if any (kept alive by holding it).
    _via: Option<Tunnel>,
}

/// A tunnel's hold on the connection that carries it.
struct Tunnel(Arc<Conn>);

impl Tunnel {
    fn new(conn: Arc<Conn>) -> Self {
        conn.tunnels.fetch_add(1, Ordering::SeqCst);
        Self(conn)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.0.tunnels.fetch_sub(1, Ordering::SeqCst);
        *lock(&self.0.last_used) = Instant::now();
    }
}

/// The connection pool. Dropping it closes every connection.
pub struct Pool {
    settings: PoolSettings,
    conns: Mutex<HashMap<Key, Vec<Arc<Conn>>>>,
    connecting: DashMap<Key, Arc<tokio::sync::Mutex<()>>>,
    handshakes: Arc<Semaphore>,
}

impl Pool {
    /// Creates the pool and its idle reaper (which ends when the pool is dropped).
    pub fn new(settings: PoolSettings) -> Arc<Self> {
        let handshakes = Arc::new(Semaphore::new(settings.max_concurrent_handshakes.max(1)));
        let pool =
            Arc::new(Self { settings, conns: Mutex::new(HashMap::new()), connecting: DashMap::new(), handshakes });
        let weak = Arc::downgrade(&pool);
        let every = (pool.settings.idle / 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
        tokio::spawn(reap(weak, every));
        pool
    }

    /// Open connections (for tests and status).
    pub fn connection_count(&self) -> usize {
        lock(&self.conns).values().map(Vec::len).sum()
    }

    /// SSH handshakes (TCP, key exchange, authentication) in progress now.
    pub fn handshakes_in_flight(&self) -> usize {
        self.settings.max_concurrent_handshakes.max(1).saturating_sub(self.handshakes.available_permits())
    }

    /// Runs `command` on `target` as `cred` and streams its output into `sink`.
    /// `cancel` stops it: before it starts, nothing runs; after, the remote process gets
    /// TERM, then KILL (see ARCHITECTURE.md for why not INT first), and the channel is closed.
    pub async fn run(
        &self,
        to: &Destination<'_>,
        command: &str,
        sink: &dyn Sink,
        cancel: &CancellationToken,
        on_started: &(dyn Fn() + Send + Sync),
    ) -> Result<ExecOutcome, SshError> {
        self.run_with_stdin(to, command, exec::Input::Now(&[]), sink, cancel, on_started).await
    }

    /// `run`, with `stdin` as `Input` says: bytes then EOF, or an answer only to an exact
    /// prompt (a `sudo -S` password line: never on a command line).
    pub async fn run_with_stdin(
        &self,
        to: &Destination<'_>,
        command: &str,
        stdin: exec::Input<'_>,
        sink: &dyn Sink,
        cancel: &CancellationToken,
        on_started: &(dyn Fn() + Send + Sync),
    ) -> Result<ExecOutcome, SshError> {
        let key = to.key();
        let Some((channel, conn, permit)) = self.session_channel(&key, to, cancel).await? else {
            return Ok(ExecOutcome::NotStarted);
        };
        on_started();
        let outcome = exec::run(channel, command, stdin, sink, cancel).await;
        *lock(&conn.last_used) = Instant::now();
        drop(permit);
        // A command that ended without an exit status behind jump hosts: if a hop's
        // connection died, say which one (the next run reconnects).
        let no_status = matches!(
            outcome,
            Ok(ExecOutcome::Finished { exit_code: None, exit_signal: None, stopped: false, .. }) | Err(_)
        );
        if no_status && !to.route.is_empty() {
            for _ in 0..20 {
                if let Some(hop) = lost_hop(&conn) {
                    self.discard(&key, &conn);
                    return Err(SshError::Hop {
                        hop,
                        reason: "connection lost while the command ran".into(),
                        unreachable: false,
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        outcome
    }

    /// A session channel on a pooled connection, with the connection's slot held by the
    /// returned permit. `None`: cancelled before a channel was opened.
    pub(super) async fn session_channel(
        &self,
        key: &Key,
        to: &Destination<'_>,
        cancel: &CancellationToken,
    ) -> Result<Option<SessionChannel>, SshError> {
        let mut last_error = None;
        for _attempt in 0..3 {
            let checkout = self.checkout(key, to);
            let (conn, permit) = tokio::select! {
                r = checkout => r?,
                _ = cancel.cancelled() => return Ok(None),
            };
            match conn.handle.channel_open_session().await {
                Ok(channel) => return Ok(Some((channel, conn, permit))),
                Err(russh::Error::ChannelOpenFailure(reason)) => {
                    // The server's MaxSessions is below ours: this connection is full. The
                    // slot is given up for good, and counted so the reaper still sees the
                    // connection as idle once its other sessions end.
                    conn.refused.fetch_add(1, Ordering::SeqCst);
                    permit.forget();
                    last_error = Some(SshError::Channel(format!(
                        "server refused a session ({reason:?}); its MaxSessions is below max_sessions_per_connection"
                    )));
                }
                Err(e) => {
                    self.discard(key, &conn);
                    last_error = Some(SshError::Disconnected(e.to_string()));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| SshError::Channel("no session available".into())))
    }

    /// Connects and authenticates on a fresh connection, runs nothing, disconnects.
    pub async fn probe(&self, to: &Destination<'_>) -> Result<(), SshError> {
        // Not pooled: it closes here, and the hops it used stay pooled.
        let conn = self.open(to).await?;
        let _ = conn.handle.disconnect(russh::Disconnect::ByApplication, "preflight", "en").await;
        Ok(())
    }

    async fn checkout(&self, key: &Key, to: &Destination<'_>) -> Result<(Arc<Conn>, OwnedSemaphorePermit), SshError> {
        if let Some(found) = self.free_slot(key) {
            return Ok(found);
        }
        // One connect at a time per key: the others wait and then take its free slots
        // instead of stampeding sshd's MaxStartups.
        let gate = self.connecting.entry(key.clone()).or_default().clone();
        let _guard = gate.lock().await;
        if let Some(found) = self.free_slot(key) {
            return Ok(found);
        }
        let conn = self.open(to).await?;
        let permit = conn
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| SshError::Channel("new connection has no slot".into()))?;
        lock(&self.conns).entry(key.clone()).or_default().push(conn.clone());
        Ok((conn, permit))
    }

    /// The connection to the last hop of `route`, reached through the hops before it;
    /// shared by every tunnel through that hop. Errors name the hop.
    fn hop<'a>(
        &'a self,
        route: &'a [Hop],
        known_hosts: &'a Path,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<Conn>, SshError>> + Send + 'a>> {
        Box::pin(async move {
            let Some(((target, cred), before)) = route.split_last() else {
                return Err(SshError::Channel("empty jump host route".into()));
            };
            let key = key_of(target, cred, before);
            let live = |pool: &Self| {
                let mut conns = lock(&pool.conns);
                let list = conns.get_mut(&key)?;
                list.retain(|c| !c.handle.is_closed());
                list.first().cloned()
            };
            if let Some(c) = live(self) {
                return Ok(c);
            }
            let gate = self.connecting.entry(key.clone()).or_default().clone();
            let _guard = gate.lock().await;
            if let Some(c) = live(self) {
                return Ok(c);
            }
            let to = Destination { route: before, target, cred, known_hosts, connect_timeout: timeout };
            let conn = self.open(&to).await.map_err(|e| e.at_hop(&target.alias))?;
            lock(&self.conns).entry(key).or_default().push(conn.clone());
            Ok(conn)
        })
    }

    /// A new connection to `target`, through the hops of `route` when there are any.
    async fn open(&self, to: &Destination<'_>) -> Result<Arc<Conn>, SshError> {
        let via = match to.route.is_empty() {
            true => None,
            false => Some(self.hop(to.route, to.known_hosts, to.connect_timeout).await?),
        };
        // Only the handshake holds a slot: a hop's own connection was opened above.
        let slot = self.handshakes.acquire().await.map_err(|_| SshError::Channel("pool closed".into()))?;
        let (keepalive, via_conn) = (self.settings.keepalive, via.as_ref());
        let handle = connect(to.target, to.cred, to.known_hosts, to.connect_timeout, keepalive, via_conn).await?;
        drop(slot);
        Ok(Arc::new(Conn {
            alias: to.target.alias.clone(),
            handle,
            slots: Arc::new(Semaphore::new(self.settings.max_sessions_per_connection)),
            refused: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
            tunnels: AtomicUsize::new(0),
            _via: via.map(Tunnel::new),
        }))
    }

    fn free_slot(&self, key: &Key) -> Option<(Arc<Conn>, OwnedSemaphorePermit)> {
        let mut conns = lock(&self.conns);
        let list = conns.get_mut(key)?;
        list.retain(|c| !c.handle.is_closed());
        list.iter().find_map(|c| c.slots.clone().try_acquire_owned().ok().map(|p| (c.clone(), p)))
    }

    fn discard(&self, key: &Key, conn: &Arc<Conn>) {
        if let Some(list) = lock(&self.conns).get_mut(key) {
            list.retain(|c| !Arc::ptr_eq(c, conn));
        }
    }

    /// Closes connections idle for longer than the idle time with no session in use.
    fn prune(&self) {
        let now = Instant::now();
        let mut closing = Vec::new();
        let mut conns = lock(&self.conns);
        for list in conns.values_mut() {
            list.retain(|c| {
                let idle = now.duration_since(*lock(&c.last_used)) >= self.settings.idle;
                let free = c.slots.available_permits() + c.refused.load(Ordering::SeqCst);
                let unused = free >= self.settings.max_sessions_per_connection && c.tunnels.load(Ordering::SeqCst) == 0;
                let keep = !(c.handle.is_closed() || idle && unused);
                if !keep {
                    closing.push(c.clone());
                }
                keep
            });
        }
        conns.retain(|_, list| !list.is_empty());
        drop(conns);
        for c in closing {
            tokio::spawn(async move {
                let _ = c.handle.disconnect(russh::Disconnect::ByApplication, "idle", "en").await;
            });
        }
    }
}

/// The first jump host under `conn` whose connection is closed.
fn lost_hop(conn: &Conn) -> Option<String> {
    let mut via = conn._via.as_ref();
    let mut lost = None;
    while let Some(Tunnel(hop)) = via {
        if hop.handle.is_closed() {
            lost = Some(hop.alias.clone());
        }
        via = hop._via.as_ref();
    }
    lost
}

async fn reap(pool: Weak<Pool>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else { return };
        pool.prune();
    }
}
