//! Connections an attacker cannot hold: every accepted socket passes the
//! [`Gate`] (a cap per peer and a global cap that sheds the oldest stalled
//! connections instead of ceasing to accept), and is read and written through
//! [`Guarded`], which closes it when its deadline passes, whatever the route
//! and whether or not a handler reads the body.
//!
//! A connection is always under one deadline ([`Phase`]):
//! - **idle** between requests: the keep-alive time (actix closes it first,
//!   this is the backstop);
//! - **in a request**, from its first byte: the request timeout for head and
//!   body (handlers answer 400 when a body misses it, see
//!   [`Conn::body_deadline`]), plus the drain time for the answer to leave;
//!   a long poll's own `wait` extends it;
//! - **after the answer**: the drain time, for the answer to be written and
//!   an unread body to be drained. Such a response says `Connection: close`.
//!
//! Why here and not in actix-http: actix-http 3.20 drains a dropped chunked
//! body with no timer at all (upstream PR actix/actix-web#3936, "I agree we
//! should avoid unbounded draining, though. I need to refine that"), and it
//! has no whole-request deadline at all. Pinning an older actix-http would
//! give up the request-smuggling and WebSocket fixes of 3.13–3.20; a
//! `[patch.crates-io]` fork would have to be carried by hand. Bounding every
//! read and write of the socket holds whatever the dispatcher does.

use std::collections::{BTreeMap, HashMap};
use std::future::Future as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The bounds of one connection's life. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// A whole request, head and body, from its first byte.
    pub request_timeout: Duration,
    /// After the answer: to write it and drain an unread body.
    pub drain_timeout: Duration,
    /// An idle keep-alive connection (actix closes it at this time; the
    /// guard closes it `drain_timeout` later at the latest).
    pub keep_alive: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one peer (an IPv4 address or an
    /// IPv6 /64), except from `--trust-forwarded-for` proxies.
    pub max_per_peer: usize,
    /// A connection that moved no byte for this long counts as stalled: the
    /// first to go when the server is near `max_connections`.
    pub stalled_after: Duration,
}

/// How many connections the open-file limit leaves room for, after raising
/// the soft limit to the hard one; 512 descriptors stay for the database,
/// the fetch client and files.
pub fn open_file_room() -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    usize::try_from(limit).unwrap_or(usize::MAX).saturating_sub(512).max(16)
}

/// Connections are shed from this share of `max_connections` on.
const SHED_FROM_PERCENT: usize = 90;
/// Most connections looked at, and shed, for one accept.
const SHED_SCAN: usize = 64;

/// Whom a connection is counted against: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerKey {
    V4(u32),
    V6(u64),
}

impl PeerKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => PeerKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => PeerKey::V4(u32::from(v4)),
                None => PeerKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Why a connection was turned away or closed early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its peer already holds `max_per_peer` connections.
    PerPeer,
    /// The server holds `max_connections` and none of them is stalled.
    Capacity,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::PerPeer => "per_peer",
            Refusal::Capacity => "capacity",
        }
    }
}

/// Admits connections and knows every open one, oldest first.
#[derive(Debug)]
pub struct Gate {
    limits: ConnLimits,
    trusted_proxies: Vec<IpNet>,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    /// Every open connection by id; ids grow, so this is oldest first.
    by_id: BTreeMap<u64, Arc<Conn>>,
    per_peer: HashMap<PeerKey, usize>,
    /// Requests in flight per client behind a trusted proxy.
    forwarded: HashMap<PeerKey, usize>,
    /// Connections told to close that have not closed yet.
    dying: usize,
}

impl Gate {
    pub fn new(limits: ConnLimits, trusted_proxies: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            trusted_proxies,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Connections open now.
    pub fn open_now(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Admit a connection from `peer`, shedding the oldest stalled ones when
    /// the server is near its cap.
    pub fn admit(self: &Arc<Self>, peer: Option<SocketAddr>, now: Instant) -> Result<Arc<Conn>, Refusal> {
        let through_proxy = peer.is_some_and(|p| self.trusted_proxies.iter().any(|n| n.contains(&p.ip())));
        let key = peer.filter(|_| !through_proxy).map(|p| PeerKey::of(p.ip()));
        let mut open = self.lock();
        if let Some(key) = key
            && open.per_peer.get(&key).copied().unwrap_or(0) >= self.limits.max_per_peer
        {
            crate::telemetry::connection_refused(Refusal::PerPeer.label());
            return Err(Refusal::PerPeer);
        }
        let shed_from = self.limits.max_connections * SHED_FROM_PERCENT / 100;
        if open.by_id.len() - open.dying >= shed_from {
            self.shed_stalled(&mut open, now);
        }
        if open.by_id.len() - open.dying >= self.limits.max_connections {
            crate::telemetry::connection_refused(Refusal::Capacity.label());
            return Err(Refusal::Capacity);
        }
        open.next_id += 1;
        let conn = Arc::new(Conn {
            id: open.next_id,
            peer: key,
            through_proxy,
            gate: Arc::downgrade(self),
            epoch: now,
            last_progress_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            shed: AtomicBool::new(false),
            state: Mutex::new(State {
                phase: Phase::Idle,
                kill_at: now + self.limits.keep_alive + self.limits.drain_timeout,
                waker: None,
            }),
            limits: self.limits.clone(),
        });
        if let Some(key) = key {
            *open.per_peer.entry(key).or_insert(0) += 1;
        }
        open.by_id.insert(conn.id, conn.clone());
        crate::telemetry::connections_open(open.by_id.len());
        Ok(conn)
    }

    /// Tell the oldest stalled connections to close: enough to get back
    /// under the shedding mark, at most [`SHED_SCAN`] looked at.
    fn shed_stalled(&self, open: &mut Open, now: Instant) {
        let shed_from = self.limits.max_connections * SHED_FROM_PERCENT / 100;
        let want = (open.by_id.len() - open.dying + 1).saturating_sub(shed_from).max(1);
        let mut shed = 0;
        for conn in open.by_id.values().take(SHED_SCAN) {
            if shed >= want {
                break;
            }
            if !conn.is_closing() && conn.stalled(now) && conn.shed() {
                shed += 1;
            }
        }
        open.dying += shed;
        for _ in 0..shed {
            crate::telemetry::connection_refused("shed_stalled");
        }
    }

    /// A request from `client` behind a trusted proxy, counted while it is
    /// in flight; `None` when that client already has `max_per_peer` in
    /// flight (the proxy's connections carry many clients, so the share
    /// per client is counted in requests).
    pub fn enter_forwarded(self: &Arc<Self>, client: IpAddr) -> Option<InFlight> {
        let key = PeerKey::of(client);
        let mut open = self.lock();
        let n = open.forwarded.entry(key).or_insert(0);
        if *n >= self.limits.max_per_peer {
            crate::telemetry::connection_refused(Refusal::PerPeer.label());
            return None;
        }
        *n += 1;
        Some(InFlight {
            gate: self.clone(),
            key,
        })
    }

    fn leave(&self, conn: &Conn) {
        let mut open = self.lock();
        if open.by_id.remove(&conn.id).is_none() {
            return;
        }
        if conn.shed.load(Ordering::Acquire) {
            open.dying = open.dying.saturating_sub(1);
        }
        if let Some(key) = conn.peer
            && let Some(n) = open.per_peer.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                open.per_peer.remove(&key);
            }
        }
        crate::telemetry::connections_open(open.by_id.len());
    }
}

/// A request of a client behind a trusted proxy, counted until dropped.
#[derive(Debug)]
pub struct InFlight {
    gate: Arc<Gate>,
    key: PeerKey,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut open = self.gate.lock();
        if let Some(n) = open.forwarded.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.forwarded.remove(&self.key);
            }
        }
    }
}

/// Where a connection is in its life, and so which deadline holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests.
    Idle,
    /// In a request whose head and body are due by `due`.
    Request { due: Instant },
    /// The answer is out of the handler; `clean` when the request body was
    /// read to its end (or there was none), `more` when bytes came meanwhile.
    Answered { clean: bool, more: bool },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The socket is closed when this passes.
    kill_at: Instant,
    /// The task to wake when the gate sheds this connection.
    waker: Option<Waker>,
}

/// One open connection, shared by its socket guard and the request
/// middleware (as connection data).
#[derive(Debug)]
pub struct Conn {
    id: u64,
    /// Whom it counts against; `None` through a trusted proxy.
    peer: Option<PeerKey>,
    /// From a `--trust-forwarded-for` proxy: its requests count against
    /// the forwarded client instead.
    through_proxy: bool,
    gate: std::sync::Weak<Gate>,
    epoch: Instant,
    /// Milliseconds after `epoch` when a byte last moved.
    last_progress_ms: AtomicU64,
    /// Told to close (shed, or its deadline passed).
    closing: AtomicBool,
    /// Shed by the gate, which counts it as dying until it leaves.
    shed: AtomicBool,
    state: Mutex<State>,
    limits: ConnLimits,
}

impl Conn {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    fn stalled(&self, now: Instant) -> bool {
        let last = self.epoch + Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(last) >= self.limits.stalled_after
    }

    fn progress(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        self.last_progress_ms.store(ms, Ordering::Relaxed);
    }

    /// Shed this connection from outside its task. True if it was open.
    fn shed(&self) -> bool {
        if self.closing.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.shed.store(true, Ordering::Release);
        if let Some(waker) = self.lock().waker.take() {
            waker.wake();
        }
        true
    }

    /// Bytes of a request came in.
    fn read_some(&self, now: Instant) {
        self.progress(now);
        let mut s = self.lock();
        match s.phase {
            Phase::Idle => {
                let due = now + self.limits.request_timeout;
                s.phase = Phase::Request { due };
                s.kill_at = due + self.limits.drain_timeout;
            }
            Phase::Answered { clean, .. } => s.phase = Phase::Answered { clean, more: true },
            Phase::Request { .. } => {}
        }
    }

    /// Everything written so far has left: after a clean answer, the
    /// connection is idle again (or in the next request, if bytes came).
    fn flushed(&self, now: Instant) {
        let mut s = self.lock();
        if let Phase::Answered { clean: true, more } = s.phase {
            if more {
                let due = now + self.limits.request_timeout;
                s.phase = Phase::Request { due };
                s.kill_at = due + self.limits.drain_timeout;
            } else {
                s.phase = Phase::Idle;
                s.kill_at = now + self.limits.keep_alive + self.limits.drain_timeout;
            }
        }
    }

    /// A request's head was parsed (the middleware calls this): a request
    /// that came in the same read as the last one starts its clock here.
    /// A long poll waits `wait` on top of the request timeout.
    pub fn request_started(&self, now: Instant, wait: Option<Duration>) {
        let mut s = self.lock();
        let due = match s.phase {
            Phase::Request { due } => due,
            Phase::Idle | Phase::Answered { .. } => now + self.limits.request_timeout,
        };
        let due = match wait {
            Some(wait) => due.max(now + wait + self.limits.request_timeout),
            None => due,
        };
        s.phase = Phase::Request { due };
        s.kill_at = due + self.limits.drain_timeout;
    }

    /// When the body of the current request must have arrived.
    pub fn body_deadline(&self) -> Option<Instant> {
        match self.lock().phase {
            Phase::Request { due } => Some(due),
            Phase::Idle | Phase::Answered { .. } => None,
        }
    }

    /// The handler answered. `clean` when the body was read to its end (or
    /// there was none); otherwise the connection is to close once the answer
    /// is out and at most `drain_timeout` has passed.
    pub fn answered(&self, now: Instant, clean: bool) {
        let mut s = self.lock();
        s.phase = Phase::Answered { clean, more: false };
        let drained_by = now + self.limits.drain_timeout;
        // A clean answer keeps what is left of the request's time to leave.
        s.kill_at = if clean {
            s.kill_at.max(drained_by)
        } else {
            s.kill_at.min(drained_by)
        };
    }
}

/// A socket that cannot outlive its connection's deadline, and leaves the
/// gate when dropped.
pub struct Guarded<T> {
    io: T,
    conn: Arc<Conn>,
    gate: Arc<Gate>,
    timer: Pin<Box<tokio::time::Sleep>>,
    timer_at: Instant,
}

impl<T> Guarded<T> {
    pub fn new(io: T, conn: Arc<Conn>, gate: Arc<Gate>) -> Self {
        let at = conn.lock().kill_at;
        Self {
            io,
            conn,
            gate,
            timer: Box::pin(tokio::time::sleep_until(at.into())),
            timer_at: at,
        }
    }

    /// The connection's shared state, for the request middleware.
    pub fn conn(&self) -> Arc<Conn> {
        self.conn.clone()
    }

    /// Is the deadline past, or the connection shed? Called on every read,
    /// write and flush: the timer follows the connection's current deadline
    /// and wakes this task when it passes, even if the dispatcher then stops
    /// touching the socket (as it does around a dropped body), and the gate
    /// can wake it to shed it.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.conn.is_closing() {
            return true;
        }
        let kill_at = {
            let mut s = self.conn.lock();
            if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                s.waker = Some(cx.waker().clone());
            }
            s.kill_at
        };
        if kill_at != self.timer_at {
            self.timer.as_mut().reset(kill_at.into());
            self.timer_at = kill_at;
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.conn.closing.store(true, Ordering::Release);
            crate::telemetry::connection_timed_out();
            return true;
        }
        // The gate may have shed it between the check and registering the waker.
        self.conn.is_closing()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection's deadline passed")
}

impl<T> Drop for Guarded<T> {
    fn drop(&mut self) {
        self.gate.leave(&self.conn);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read_some(Instant::now());
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.progress(Instant::now());
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            self.conn.flushed(Instant::now());
            // Idle again: the timer moves to the keep-alive deadline.
            if self.expired(cx) {
                return Poll::Ready(Err(timed_out()));
            }
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Marks the end of a request body when its handler reads it to the end.
struct ReadToEnd {
    inner: actix_web::dev::Payload,
    done: Arc<AtomicBool>,
}

impl futures_util::Stream for ReadToEnd {
    type Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            self.done.store(true, Ordering::Release);
        }
        next
    }
}

/// Does the request announce a body?
fn has_body(req: &actix_web::dev::ServiceRequest) -> bool {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let headers = req.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// A long poll (a GET with `index` or `wait`) waits this long on top of the
/// request timeout: its deadline is its own `wait`.
fn long_poll_wait(req: &actix_web::dev::ServiceRequest) -> Option<Duration> {
    if req.method() != actix_web::http::Method::GET {
        return None;
    }
    let mut polls = false;
    let mut wait = None;
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match k.as_ref() {
            "index" => polls = true,
            "wait" => {
                polls = true;
                wait = crate::feed::parse_wait(Some(&v)).ok();
            }
            _ => {}
        }
    }
    polls.then(|| wait.unwrap_or(crate::feed::DEFAULT_WAIT))
}

/// The middleware half of the guard: starts a request's clock at its head
/// (for requests that arrived behind another), notes whether the handler
/// read the body to its end, and closes the connection after an answer that
/// left a body unread, at most `drain_timeout` later.
pub async fn deadlines(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let Some(conn) = req.conn_data::<Arc<Conn>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_left_body());
    };
    conn.request_started(Instant::now(), long_poll_wait(&req));
    let in_flight = match (conn.through_proxy, conn.gate.upgrade(), req.peer_addr()) {
        (true, Some(gate), Some(peer)) => {
            let xff = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
            let client = super::extract::client_address(peer.ip(), xff, &gate.trusted_proxies);
            match gate.enter_forwarded(client) {
                Some(in_flight) => Some(in_flight),
                None => {
                    conn.answered(Instant::now(), !has_body(&req));
                    let limit = gate.limits.max_per_peer;
                    return Ok(req.into_response(too_many(limit)).map_into_right_body());
                }
            }
        }
        _ => None,
    };
    let read = if has_body(&req) {
        let done = Arc::new(AtomicBool::new(false));
        let inner = actix_web::HttpMessage::take_payload(&mut req);
        req.set_payload(actix_web::dev::Payload::Stream {
            payload: Box::pin(ReadToEnd {
                inner,
                done: done.clone(),
            }),
        });
        Some(done)
    } else {
        None
    };
    let result = next.call(req).await;
    drop(in_flight);
    let clean = read.is_none_or(|done| done.load(Ordering::Acquire));
    conn.answered(Instant::now(), clean);
    let mut res = result?;
    if !clean {
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(res.map_into_left_body())
}

/// 429 for a client behind a proxy with too many requests in flight.
fn too_many(limit: usize) -> actix_web::HttpResponse {
    actix_web::HttpResponse::TooManyRequests()
        .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
        .json(crate::error::ErrorBody {
            error: "too_many_requests",
            error_description: format!("more than {limit} requests at once from this client"),
            field: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            request_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(1),
            keep_alive: Duration::from_secs(5),
            max_connections: 20,
            max_per_peer: 3,
            stalled_after: Duration::from_secs(2),
        }
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(s.parse().unwrap(), 40000))
    }

    fn kill_at(c: &Conn) -> Instant {
        c.lock().kill_at
    }

    #[test]
    fn each_peer_holds_at_most_its_share() {
        let gate = Gate::new(limits(), vec!["10.9.0.0/16".parse().unwrap()]);
        let now = Instant::now();
        let held: Vec<_> = (0..3).map(|_| gate.admit(peer("192.0.2.1"), now).unwrap()).collect();
        assert_eq!(gate.admit(peer("192.0.2.1"), now).unwrap_err(), Refusal::PerPeer);
        assert_eq!(gate.admit(peer("::ffff:192.0.2.1"), now).unwrap_err(), Refusal::PerPeer);
        gate.admit(peer("192.0.2.2"), now).unwrap();
        // An IPv6 /64 is one peer; the next /64 is another.
        for i in 0..3 {
            gate.admit(peer(&format!("2001:db8:1:2::{i}")), now).unwrap();
        }
        assert_eq!(
            gate.admit(peer("2001:db8:1:2:ffff::9"), now).unwrap_err(),
            Refusal::PerPeer
        );
        gate.admit(peer("2001:db8:1:3::1"), now).unwrap();
        // A trusted proxy carries many clients: not counted per peer.
        for _ in 0..5 {
            gate.admit(peer("10.9.1.1"), now).unwrap();
        }
        // Leaving makes room again.
        gate.leave(&held[0]);
        gate.admit(peer("192.0.2.1"), now).unwrap();
        assert_eq!(gate.open_now(), 3 + 1 + 3 + 1 + 5);
    }

    #[test]
    fn near_the_cap_the_oldest_stalled_connections_are_shed() {
        let gate = Gate::new(limits(), vec![]);
        let t0 = Instant::now();
        let first: Vec<_> = (0..9)
            .map(|i| gate.admit(peer(&format!("192.0.2.{i}")), t0).unwrap())
            .collect();
        let t1 = t0 + Duration::from_secs(3);
        // These move bytes: never stalled.
        let busy: Vec<_> = (0..9)
            .map(|i| {
                let c = gate.admit(peer(&format!("198.51.100.{i}")), t1).unwrap();
                c.read_some(t1);
                c
            })
            .collect();
        assert_eq!(gate.open_now(), 18);
        // At 18 of 20 (90 %), each accept sheds the oldest stalled one.
        let t2 = t1 + Duration::from_secs(1);
        let late = gate.admit(peer("203.0.113.1"), t2).unwrap();
        assert!(first[0].is_closing() && first[0].shed.load(Ordering::Acquire));
        assert!(!first[1].is_closing());
        gate.admit(peer("203.0.113.2"), t2).unwrap();
        assert!(first[1].is_closing());
        // Shed ones count as gone before they leave.
        gate.leave(&first[0]);
        gate.leave(&first[1]);
        assert_eq!(gate.open_now(), 18);
        assert!(busy.iter().all(|c| !c.is_closing()) && !late.is_closing());
        // With nothing stalled, a full server refuses instead of ceasing to accept.
        let t3 = t2 + Duration::from_millis(10);
        for c in &busy {
            c.read_some(t3);
        }
        for c in first.iter().skip(2) {
            c.read_some(t3);
        }
        gate.admit(peer("203.0.113.3"), t3).unwrap();
        gate.admit(peer("203.0.113.4"), t3).unwrap();
        assert_eq!(gate.admit(peer("203.0.113.5"), t3).unwrap_err(), Refusal::Capacity);
    }

    #[test]
    fn a_connection_is_always_under_a_deadline() {
        let gate = Gate::new(limits(), vec![]);
        let t0 = Instant::now();
        let c = gate.admit(peer("192.0.2.1"), t0).unwrap();
        // Idle: keep-alive, plus the drain time as a backstop.
        assert_eq!(kill_at(&c), t0 + Duration::from_secs(6));
        // The first byte starts the request's clock.
        let t1 = t0 + Duration::from_secs(1);
        c.read_some(t1);
        assert_eq!(c.body_deadline(), Some(t1 + Duration::from_secs(10)));
        assert_eq!(kill_at(&c), t1 + Duration::from_secs(11));
        // More bytes and the head being parsed do not move it.
        c.read_some(t1 + Duration::from_secs(2));
        c.request_started(t1 + Duration::from_secs(2), None);
        assert_eq!(c.body_deadline(), Some(t1 + Duration::from_secs(10)));
        // An answer with the body unread: closed after the drain time.
        let t2 = t1 + Duration::from_secs(3);
        c.answered(t2, false);
        assert_eq!(kill_at(&c), t2 + Duration::from_secs(1));
        c.flushed(t2);
        assert_eq!(kill_at(&c), t2 + Duration::from_secs(1), "still closing");
        assert_eq!(c.body_deadline(), None);
    }

    #[test]
    fn a_clean_answer_returns_to_idle_and_long_polls_wait() {
        let gate = Gate::new(limits(), vec![]);
        let t0 = Instant::now();
        let c = gate.admit(peer("192.0.2.1"), t0).unwrap();
        c.read_some(t0);
        c.request_started(t0, Some(Duration::from_secs(60)));
        assert_eq!(c.body_deadline(), Some(t0 + Duration::from_secs(70)));
        let t1 = t0 + Duration::from_secs(60);
        c.answered(t1, true);
        assert_eq!(kill_at(&c), t0 + Duration::from_secs(71));
        c.flushed(t1);
        assert_eq!(kill_at(&c), t1 + Duration::from_secs(6));
        // A request that came in the same read as the answer: its clock
        // starts when the answer is out.
        c.read_some(t1);
        c.request_started(t1, None);
        let t2 = t1 + Duration::from_millis(5);
        c.answered(t2, true);
        c.read_some(t2);
        c.flushed(t2);
        assert_eq!(c.body_deadline(), Some(t2 + Duration::from_secs(10)));
    }

    #[test]
    fn clients_behind_a_trusted_proxy_are_counted_in_requests() {
        let gate = Gate::new(limits(), vec!["10.9.0.0/16".parse().unwrap()]);
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| gate.enter_forwarded(client).unwrap()).collect();
        assert!(gate.enter_forwarded(client).is_none());
        assert!(gate.enter_forwarded("203.0.113.10".parse().unwrap()).is_some());
        drop(held);
        assert!(gate.enter_forwarded(client).is_some());
        let via_proxy = gate.admit(peer("10.9.1.1"), Instant::now()).unwrap();
        assert!(via_proxy.through_proxy && via_proxy.peer.is_none());
        let direct = gate.admit(peer("192.0.2.1"), Instant::now()).unwrap();
        assert!(!direct.through_proxy && direct.peer.is_some());
    }
}
