//! The query service's calls to a ledger it runs apart from: `GET /v1/log` (backfill, and the
//! ledger's head) and `POST /v1/audit-log-queries` (recording who asked what). Plain HTTP/1.1 on
//! hyper, one connection per call: both are rare next to the stream. (Put a TLS-terminating
//! proxy in front of a ledger on another machine.)

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use proto_types::export::{ExportHeader, FILE_HEADER_LEN};

/// Where the ledger is and the token to call it with (scopes `audit:read` and `ingest`).
#[derive(Clone)]
pub struct LedgerClient {
    authority: String,
    token: String,
}

impl std::fmt::Debug for LedgerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerClient")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("ledger URL {0:?} is not usable: give http://HOST:PORT")]
    BadUrl(String),
    #[error("cannot reach the ledger at {0}: {1}")]
    Connect(String, String),
    #[error("the ledger answered {0}: {1}")]
    Status(StatusCode, String),
    #[error("the ledger's answer is malformed: {0}")]
    Malformed(String),
}

/// A range of the ledger's log, and its head.
#[derive(Debug)]
pub struct LogRange {
    pub entries: Vec<(u64, Vec<u8>)>,
    /// The hash of the entry before the range (genesis for a range from seq 0).
    pub anchor: proto_types::chain::Hash32,
    /// The ledger's next seq when it answered.
    pub ledger_next: Option<u64>,
}

/// The response header naming the ledger's next seq.
pub const NEXT_SEQ_HEADER: &str = "handover-next-seq";

impl LedgerClient {
    /// # Errors
    /// [`ClientError::BadUrl`] unless `url` is `http://HOST:PORT` (a trailing `/` is fine).
    pub fn new(url: &str, token: String) -> Result<Self, ClientError> {
        let authority = url
            .strip_prefix("http://")
            .map(|s| s.trim_end_matches('/'))
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .ok_or_else(|| ClientError::BadUrl(url.to_string()))?;
        Ok(Self {
            authority: authority.to_string(),
            token,
        })
    }

    fn connect_error(&self, e: &dyn std::fmt::Display) -> ClientError {
        ClientError::Connect(self.authority.clone(), e.to_string())
    }

    /// Sends one request on a new connection: the response (its body still to read) and the
    /// connection's driver, to abort once the body is read.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<
        (
            hyper::Response<hyper::body::Incoming>,
            tokio::task::JoinHandle<Result<(), hyper::Error>>,
        ),
        ClientError,
    > {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| self.connect_error(&e))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| self.connect_error(&e))?;
        let driver = tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::BadUrl(e.to_string()))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| self.connect_error(&e))?;
        Ok((res, driver))
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), ClientError> {
        let (res, driver) = self.send(method, path, body).await?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| self.connect_error(&e))?
            .to_bytes();
        driver.abort();
        Ok((status, headers, bytes))
    }

    /// Up to `limit` entries from `from` on, as the ledger stores them. The bytes are not
    /// verified here: the applier verifies them like any others.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn log(&self, from: u64, limit: u64) -> Result<LogRange, ClientError> {
        let (status, headers, body) = self
            .call("GET", &format!("/v1/log?from={from}&limit={limit}"), None)
            .await?;
        if status != StatusCode::OK {
            return Err(ClientError::Status(
                status,
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        let ledger_next = headers
            .get(NEXT_SEQ_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let (anchor, entries) = parse_export(&body)?;
        Ok(LogRange {
            entries,
            anchor,
            ledger_next,
        })
    }

    /// GETs `path` and streams a successful body into `out` as it arrives (nothing is held
    /// whole): the content type. Any other status is an error carrying the body's text.
    ///
    /// # Errors
    /// [`ClientError`], or the writer's error as [`ClientError::Connect`].
    pub async fn download(
        &self,
        path: &str,
        out: &mut impl std::io::Write,
    ) -> Result<String, ClientError> {
        let (res, driver) = self.send("GET", path, None).await?;
        let status = res.status();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut body = res.into_body();
        if status != StatusCode::OK {
            let text = body
                .collect()
                .await
                .map_err(|e| self.connect_error(&e))?
                .to_bytes();
            driver.abort();
            return Err(ClientError::Status(
                status,
                String::from_utf8_lossy(&text).into_owned(),
            ));
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.connect_error(&e))?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data).map_err(|e| self.connect_error(&e))?;
            }
        }
        driver.abort();
        Ok(content_type)
    }

    /// Records a forensic read on the ledger.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn record_query(
        &self,
        principal: &str,
        query: &str,
        results: u64,
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({"principal": principal, "query": query, "results": results})
            .to_string();
        let (status, _, text) = self
            .call("POST", "/v1/audit-log-queries", Some(body))
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(ClientError::Status(
                status,
                String::from_utf8_lossy(&text).into_owned(),
            ))
        }
    }
}

/// The anchor and records of an export file, as `(seq, entry bytes)`; seqs follow from the
/// header.
#[allow(clippy::type_complexity)]
fn parse_export(
    body: &[u8],
) -> Result<(proto_types::chain::Hash32, Vec<(u64, Vec<u8>)>), ClientError> {
    let bad = |why: &str| ClientError::Malformed(why.to_string());
    let head: &[u8; FILE_HEADER_LEN] = body
        .get(..FILE_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| bad("shorter than an export header"))?;
    let header = ExportHeader::decode(head).map_err(|e| bad(&e.to_string()))?;
    let mut rest = &body[FILE_HEADER_LEN..];
    let mut out = Vec::with_capacity(header.count.min(10_000) as usize);
    for i in 0..header.count {
        let len = rest
            .get(..4)
            .map(|l| u32::from_le_bytes(l.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| bad("truncated record length"))?;
        let entry = rest
            .get(4..4 + len)
            .ok_or_else(|| bad("truncated record"))?;
        out.push((header.first_seq + i, entry.to_vec()));
        rest = &rest[4 + len..];
    }
    Ok((header.anchor, out))
}
