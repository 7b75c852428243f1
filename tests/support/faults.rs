//! A fault-injecting HTTP proxy on 127.0.0.1, in front of a real server.
//!
//! Each client connection carries one request (the proxy answers with
//! `Connection: close`). The request goes to the upstream unchanged (its `Host`
//! header too, so SigV4 signatures still verify); the upstream's answer is read
//! whole and sent back with a `Content-Length`. For the requests a plan picks
//! (listing requests, or every API call), a fault drawn at the plan's rate replaces
//! that: an error status, a reset, a body cut short, or a stall.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One way an answer goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500.
    InternalError,
    /// HTTP 503 in the service's own words (S3 SlowDown, Azure ServerBusy, GCS JSON).
    Busy,
    /// HTTP 429 with `Retry-After: 1`.
    TooManyRequests,
    /// The connection is reset before any byte of the answer.
    ResetBeforeAnswer,
    /// The head and half the body are sent (with the whole length announced), then a reset.
    ResetMidBody,
    /// Status 200 with half the body, and a `Content-Length` that matches the half.
    CutWithLength,
    /// Status 200 with half the body, ended by closing the connection (no length).
    CutByClose,
    /// No answer for longer than the client's timeout, then a close.
    Stall,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 8] = [
        Fault::InternalError,
        Fault::Busy,
        Fault::TooManyRequests,
        Fault::ResetBeforeAnswer,
        Fault::ResetMidBody,
        Fault::CutWithLength,
        Fault::CutByClose,
        Fault::Stall,
    ];
}

/// Whose error bodies the proxy imitates, and which requests are listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// ListObjectsV2 requests (`list-type=2`).
    S3,
    /// JSON API object listings (`GET /storage/v1/b/{bucket}/o`).
    Gcs,
    /// List Blobs (`comp=list`).
    Azure,
    /// Every request (the Roboflow stand-in).
    Api,
}

/// What the proxy does to the requests it picks.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Whose requests these are.
    pub service: Service,
    /// The share of picked requests that get a fault (0 to 1).
    pub rate: f64,
    /// The faults drawn from, equally often.
    pub faults: Vec<Fault>,
    /// How long a stall lasts.
    pub stall: Duration,
    /// Seed of the draws, so a failing run can be repeated.
    pub seed: u64,
}

impl Plan {
    /// Every fault at `rate` on `service`'s listing requests.
    pub fn every_fault(service: Service, rate: f64, seed: u64) -> Self {
        Plan {
            service,
            rate,
            faults: Fault::ALL.to_vec(),
            stall: Duration::from_secs(3),
            seed,
        }
    }

    fn picks(&self, method: &str, target: &str) -> bool {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        match self.service {
            // ListObjectsV2, and ListObjectVersions (pinned versions).
            Service::S3 => {
                method == "GET"
                    && query
                        .split('&')
                        .any(|p| p == "list-type=2" || p == "versions" || p == "versions=")
            }
            Service::Gcs => method == "GET" && path.starts_with("/storage/v1/b/") && path.ends_with("/o"),
            Service::Azure => method == "GET" && query.split('&').any(|p| p == "comp=list"),
            Service::Api => true,
        }
    }
}

/// Counts of what the proxy saw and did.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests the plan picked.
    pub picked: AtomicU64,
    /// Faults injected, by the order of [`Fault::ALL`].
    pub injected: [AtomicU64; 8],
    /// Every request's head as it came (request line, then header lines).
    pub heads: Mutex<Vec<Vec<String>>>,
}

impl Counts {
    /// Faults injected in all.
    pub fn total(&self) -> u64 {
        self.injected.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    /// How many of each kind, for messages.
    pub fn by_kind(&self) -> Vec<(Fault, u64)> {
        Fault::ALL
            .iter()
            .zip(&self.injected)
            .map(|(f, c)| (*f, c.load(Ordering::SeqCst)))
            .collect()
    }
}

/// The running proxy; stops accepting when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What it did.
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://host:port`, any path ignored) with `plan`.
    pub fn start(upstream: &str, plan: Plan) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("upstream host")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let rng = Arc::new(Mutex::new(plan.seed.max(1)));
        let (seen, stopped) = (Arc::clone(&counts), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (plan, upstream, seen, rng) =
                            (plan.clone(), upstream.clone(), Arc::clone(&seen), Arc::clone(&rng));
                        std::thread::spawn(move || {
                            let _ = serve(client, &upstream, &plan, &seen, &rng);
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            }
        });
        FaultProxy { url, counts, stop }
    }
}

/// xorshift64*: enough for picking faults, and repeatable from a seed.
fn draw(state: &Mutex<u64>) -> f64 {
    let mut x = state.lock().expect("rng");
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
    (v >> 11) as f64 / (1u64 << 53) as f64
}

struct Message {
    head: Vec<String>,
    body: Vec<u8>,
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Ok(head);
        }
        head.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A body framed by Content-Length, chunked encoding, or (answers only) the close.
fn read_body(reader: &mut impl BufRead, head: &[String], to_close: bool) -> std::io::Result<Vec<u8>> {
    if header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    if let Some(len) = header(head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if to_close {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// The head without framing and connection headers, for re-sending.
fn plain_head(head: &[String]) -> Vec<String> {
    head.iter()
        .enumerate()
        .filter(|(i, l)| {
            *i == 0
                || !["content-length", "transfer-encoding", "connection", "keep-alive"]
                    .iter()
                    .any(|h| l.split(':').next().is_some_and(|k| k.trim().eq_ignore_ascii_case(h)))
        })
        .map(|(_, l)| l.clone())
        .collect()
}

fn write_message(out: &mut TcpStream, head: &[String], length: Option<usize>, body: &[u8]) -> std::io::Result<()> {
    let mut text = plain_head(head).join("\r\n");
    if let Some(len) = length {
        text.push_str(&format!("\r\ncontent-length: {len}"));
    }
    text.push_str("\r\nconnection: close\r\n\r\n");
    out.write_all(text.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

fn forward(upstream: &str, request: &Message) -> std::io::Result<Message> {
    let mut conn = TcpStream::connect(upstream)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    write_message(&mut conn, &request.head, Some(request.body.len()), &request.body)?;
    let mut reader = BufReader::new(conn);
    let head = read_head(&mut reader)?;
    let body = read_body(&mut reader, &head, true)?;
    Ok(Message { head, body })
}

fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

fn error_answer(service: Service, status: u16) -> Message {
    let (reason, content_type, body, extra) = match (service, status) {
        (Service::S3, 503) => (
            "Slow Down",
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".to_owned(),
            None,
        ),
        (Service::S3, 429) => (
            "Too Many Requests",
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>TooManyRequests</Code><Message>Please slow down.</Message></Error>".to_owned(),
            None,
        ),
        (Service::S3, _) => (
            "Internal Server Error",
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>".to_owned(),
            None,
        ),
        (Service::Azure, 503) => (
            "Server Busy",
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code><Message>The server is currently unable to receive requests. Please retry your request.</Message></Error>".to_owned(),
            Some("x-ms-error-code: ServerBusy"),
        ),
        (Service::Azure, _) => (
            "Error",
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InternalError</Code><Message>The server encountered an internal error. Please retry the request.</Message></Error>".to_owned(),
            Some("x-ms-error-code: InternalError"),
        ),
        (Service::Gcs, s) | (Service::Api, s) => (
            "Error",
            "application/json",
            format!("{{\"error\":{{\"code\":{s},\"message\":\"Backend Error\",\"errors\":[{{\"reason\":\"backendError\"}}]}}}}"),
            None,
        ),
    };
    let mut head = vec![
        format!("HTTP/1.1 {status} {reason}"),
        format!("content-type: {content_type}"),
    ];
    if status == 429 {
        head.push("retry-after: 1".to_owned());
    }
    if let Some(extra) = extra {
        head.push(extra.to_owned());
    }
    Message {
        head,
        body: body.into_bytes(),
    }
}

fn serve(mut client: TcpStream, upstream: &str, plan: &Plan, counts: &Counts, rng: &Mutex<u64>) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let head = read_head(&mut reader)?;
    let body = read_body(&mut reader, &head, false)?;
    counts
        .heads
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(head.clone());
    let request = Message { head, body };
    let mut words = request.head[0].split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let fault = if plan.picks(method, target) {
        counts.picked.fetch_add(1, Ordering::SeqCst);
        (draw(rng) < plan.rate && !plan.faults.is_empty()).then(|| {
            let i = ((draw(rng) * plan.faults.len() as f64) as usize).min(plan.faults.len() - 1);
            plan.faults[i]
        })
    } else {
        None
    };
    let Some(fault) = fault else {
        let answer = forward(upstream, &request)?;
        return write_message(&mut client, &answer.head, Some(answer.body.len()), &answer.body);
    };
    let index = Fault::ALL.iter().position(|f| *f == fault).expect("known fault");
    counts.injected[index].fetch_add(1, Ordering::SeqCst);
    match fault {
        Fault::InternalError | Fault::Busy | Fault::TooManyRequests => {
            let status = match fault {
                Fault::InternalError => 500,
                Fault::Busy => 503,
                _ => 429,
            };
            let answer = error_answer(plan.service, status);
            write_message(&mut client, &answer.head, Some(answer.body.len()), &answer.body)
        }
        Fault::ResetBeforeAnswer => {
            reset(&client);
            Ok(())
        }
        Fault::Stall => {
            std::thread::sleep(plan.stall);
            Ok(())
        }
        Fault::ResetMidBody | Fault::CutWithLength | Fault::CutByClose => {
            let answer = forward(upstream, &request)?;
            let half = &answer.body[..answer.body.len() / 2];
            match fault {
                Fault::ResetMidBody => {
                    write_message(&mut client, &answer.head, Some(answer.body.len()), half)?;
                    reset(&client);
                    Ok(())
                }
                Fault::CutWithLength => write_message(&mut client, &answer.head, Some(half.len()), half),
                _ => write_message(&mut client, &answer.head, None, half),
            }
        }
    }
}
