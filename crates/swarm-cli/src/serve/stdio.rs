//! `swarm mcp`'s stdio transport: one JSON-RPC message a line, each at most [`MAX_LINE`] bytes.
//! rmcp's own transport drops a longer line without a word, so the client waits for an answer
//! that never comes; this one answers it with an error naming the limit, says so on stderr, and
//! goes on reading the next line.

use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleServer;
use serde_json::{json, Value};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Mutex};

/// The longest message (line, without its newline) read: rmcp's own default, which matches the
/// largest event its HTTP client accepts.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// How much of a refused line is kept, to find the request's `id` in it.
const PREFIX: usize = 64 * 1024;

type Rx = RxJsonRpcMessage<RoleServer>;
type Out = Arc<Mutex<Option<Box<dyn AsyncWrite + Send + Unpin>>>>;

/// Messages read by a task of their own (reading is then never cancelled halfway through a
/// line); answers written whole, one line each, by whoever holds `out`.
pub struct LineTransport {
    incoming: mpsc::Receiver<Rx>,
    out: Out,
}

/// The transport on the process's stdin and stdout.
pub fn stdio() -> LineTransport {
    LineTransport::new(tokio::io::BufReader::new(tokio::io::stdin()), tokio::io::stdout(), MAX_LINE)
}

impl LineTransport {
    pub fn new(
        read: impl AsyncBufRead + Send + Unpin + 'static,
        write: impl AsyncWrite + Send + Unpin + 'static,
        max: usize,
    ) -> LineTransport {
        let (tx, incoming) = mpsc::channel(16);
        let out: Out = Arc::new(Mutex::new(Some(Box::new(write))));
        tokio::spawn(read_loop(read, max, tx, out.clone()));
        LineTransport { incoming, out }
    }
}

async fn write_line(out: &Out, msg: &impl serde::Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    let mut out = out.lock().await;
    let w = out.as_mut().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "transport closed"))?;
    w.write_all(&line).await?;
    w.flush().await
}

impl Transport<RoleServer> for LineTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl std::future::Future<Output = io::Result<()>> + Send + 'static {
        let out = self.out.clone();
        async move { write_line(&out, &item).await }
    }

    async fn receive(&mut self) -> Option<Rx> {
        self.incoming.recv().await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.out.lock().await.take();
        Ok(())
    }
}

enum Line {
    Whole,
    /// Longer than the limit: only its first [`PREFIX`] bytes are kept, the rest was skipped.
    TooLong,
    End,
}

async fn read_loop(mut read: impl AsyncBufRead + Unpin, max: usize, tx: mpsc::Sender<Rx>, out: Out) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut read, max, &mut line).await {
            Ok(Line::Whole) => {
                if let Some(msg) = parse(&line, &out).await {
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Line::TooLong) => {
                refuse(&line, max, &out).await;
                line.shrink_to(PREFIX);
            }
            Ok(Line::End) => return,
            Err(e) => {
                eprintln!("swarm mcp: reading stdin: {e}");
                return;
            }
        }
    }
}

/// One line into `line`, never holding more than `max` + 1 bytes of it.
async fn read_line(
    read: &mut (impl AsyncBufRead + Unpin),
    max: usize,
    line: &mut Vec<u8>,
) -> io::Result<Line> {
    let n = (&mut *read).take(max as u64 + 1).read_until(b'\n', line).await?;
    if n == 0 {
        return Ok(Line::End);
    }
    if line.last() == Some(&b'\n') || line.len() <= max {
        return Ok(Line::Whole);
    }
    line.truncate(PREFIX);
    loop {
        let buf = read.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::TooLong);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                read.consume(i + 1);
                return Ok(Line::TooLong);
            }
            None => {
                let n = buf.len();
                read.consume(n);
            }
        }
    }
}

/// A line as a message. Unparsable text is ignored, as rmcp does (answering garbage can start an
/// error storm with a peer that echoes); well-formed JSON of the wrong shape is answered
/// `Invalid Request` when it has an `id` (a notification gets no answer).
async fn parse(line: &[u8], out: &Out) -> Option<Rx> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let e = match serde_json::from_slice::<Rx>(line) {
        Ok(msg) => return Some(msg),
        Err(e) => e,
    };
    let id = serde_json::from_slice::<Value>(line).ok()?.get("id").cloned()?;
    let answer = error_answer(id, -32600, format!("Invalid request: {e}"), Value::Null);
    if let Err(e) = write_line(out, &answer).await {
        eprintln!("swarm mcp: writing stdout: {e}");
    }
    None
}

fn error_answer(id: Value, code: i64, message: String, data: Value) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if !data.is_null() {
        error["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

/// Answers a line over the limit with an error naming it: to its request's `id` when the line's
/// start has one, else to `null` (JSON-RPC's id for a request whose id cannot be read).
async fn refuse(prefix: &[u8], max: usize, out: &Out) {
    let id = leading_id(prefix).unwrap_or(Value::Null);
    let limit = match max % (1024 * 1024) {
        0 => format!("{} MiB ({max} bytes)", max / (1024 * 1024)),
        _ => format!("{max} bytes"),
    };
    let message = format!(
        "request too large: a message over stdio may be at most {limit}; this one was longer and was not read"
    );
    eprintln!(
        "swarm mcp: refused a message of more than {limit} (id {id}); answered with an error, still serving"
    );
    let answer = error_answer(id, -32600, message, json!({ "max_bytes": max }));
    if let Err(e) = write_line(out, &answer).await {
        eprintln!("swarm mcp: writing stdout: {e}");
    }
}

/// The `id` member of a JSON object whose text is cut short, when it comes before the cut (JSON-RPC
/// clients write it before `params`, where the bulk is): a number or a string.
fn leading_id(text: &[u8]) -> Option<Value> {
    let (mut depth, mut i, mut key) = (0usize, 0usize, None);
    while i < text.len() {
        match text[i] {
            b'"' => {
                let end = string_end(text, i)?;
                if depth == 1 {
                    key = Some(&text[i..=end]);
                }
                i = end;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b':' if depth == 1 && key.take() == Some(&b"\"id\""[..]) => {
                let value =
                    serde_json::Deserializer::from_slice(&text[i + 1..]).into_iter::<Value>().next()?;
                return value.ok().filter(|v| v.is_number() || v.is_string());
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(text: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_found_at_the_start_of_a_cut_message() {
        let cut = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"plan":"aaaa"#;
        assert_eq!(leading_id(cut), Some(json!(7)));
        let nested = br#"{"params":{"id":1,"s":"\"id\":3"},"id":"abc","method":"x"#;
        assert_eq!(leading_id(nested), Some(json!("abc")));
        assert_eq!(leading_id(br#"{"jsonrpc":"2.0","method":"notifications/x","params":{"id":2"#), None);
        assert_eq!(leading_id(br#"{"id":"#), None);
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_answered_and_the_next_one_read() {
        let big =
            format!(r#"{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(200));
        let ping = r#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#;
        let input = format!("{big}\n{ping}\n");
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut transport = LineTransport::new(std::io::Cursor::new(input.into_bytes()), server, 100);
        let msg = transport.receive().await.expect("the next message is read");
        assert_eq!(serde_json::to_value(&msg).unwrap()["id"], 6);
        drop(transport);
        let mut answer = String::new();
        tokio::io::BufReader::new(client).read_line(&mut answer).await.unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["id"], 5);
        assert_eq!(answer["error"]["data"]["max_bytes"], 100);
        assert!(answer["error"]["message"].as_str().unwrap().contains("100 bytes"), "{answer}");
    }
}
