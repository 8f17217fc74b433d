//! A task's log as Server-Sent Events, from the byte offset the client has, as it is written:
//! `chunk` events (`{attempt, offset, next, text}`), a `capped` event once the log reached its
//! head+tail cap (`[run] log_limit`: the middle of the output is left out and the tail comes
//! when the attempt ends), and `end` once the attempt ended and all of its log was sent.

use super::app::{off_loop, App, OpError, OpResult};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

/// The most sent in one `chunk` event.
const CHUNK: u64 = 64 * 1024;
/// How often a log that has nothing new is looked at again.
const POLL: Duration = Duration::from_millis(250);
/// What the attempt log writes where its head ends and the cap applies.
const CAP_MARK: &str = "--- swarm: this log keeps its first";

/// Where a stream stands.
struct Cursor {
    run: String,
    task: String,
    attempt: Option<u32>,
    offset: u64,
    capped: bool,
}

/// What one look at the log gave.
enum Step {
    Chunk { attempt: u32, offset: u64, text: String },
    Nothing,
    Ended { attempt: u32 },
}

/// The stream of `task`'s log in `run` (attempt `attempt`, default its latest) from `offset`.
pub async fn stream(app: Arc<App>, run: String, task: String, attempt: Option<u32>, offset: u64) -> Response {
    // A task or attempt that does not exist is an error answer, not an empty stream.
    let (r, t) = (run.clone(), task.clone());
    if let Err(e) = off_loop(&app, move |app| Ok(app.engine.task_log(&r, &t, attempt)?)).await {
        return super::http::op_error(e);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(16);
    tokio::spawn(async move {
        let mut cursor = Cursor { run, task, attempt, offset, capped: false };
        loop {
            let looked = off_loop(&app, move |app| {
                let step = look(app, &mut cursor);
                step.map(|s| (s, cursor))
            })
            .await;
            let Ok((step, back)) = looked else { break };
            cursor = back;
            let event = match step {
                Step::Chunk { attempt, offset, text } => {
                    let capped = !cursor.capped && text.contains(CAP_MARK);
                    let next = cursor.offset;
                    let data = json!({ "attempt": attempt, "offset": offset, "next": next, "text": text });
                    if tx.send(Ok(SseEvent::default().event("chunk").data(data.to_string()))).await.is_err() {
                        break;
                    }
                    if !capped {
                        continue;
                    }
                    cursor.capped = true;
                    let message =
                        "the log reached its cap ([run] log_limit): it keeps the head and the tail; \
                                   the middle is left out and the tail is added when the attempt ends";
                    SseEvent::default().event("capped").data(json!({ "message": message }).to_string())
                }
                Step::Nothing if tx.is_closed() => break,
                Step::Nothing => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Step::Ended { attempt } => {
                    let data = json!({ "attempt": attempt, "next": cursor.offset });
                    let _ = tx.send(Ok(SseEvent::default().event("end").data(data.to_string()))).await;
                    break;
                }
            };
            if tx.send(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).keep_alive(KeepAlive::default()).into_response()
}

/// The next piece of the log past the cursor, if any. Blocking.
fn look(app: &Arc<App>, cursor: &mut Cursor) -> OpResult<Step> {
    let log = app.engine.task_log(&cursor.run, &cursor.task, cursor.attempt)?;
    // Pinned to the attempt first seen, so a retry does not splice two logs together.
    cursor.attempt.get_or_insert(log.attempt);
    let bytes = match &log.path {
        Some(path) => read_from(path, cursor.offset)?,
        None => vec![],
    };
    if bytes.is_empty() {
        return Ok(if log.ended || log.attempt == 0 && log.task_state.is_terminal() {
            Step::Ended { attempt: log.attempt }
        } else {
            Step::Nothing
        });
    }
    // Only whole UTF-8 characters; a character cut at the chunk's end comes with the next.
    let whole = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
        Err(_) => bytes.len(),
    };
    let text = String::from_utf8_lossy(&bytes[..whole]).into_owned();
    let offset = cursor.offset;
    cursor.offset += whole as u64;
    Ok(Step::Chunk { attempt: log.attempt, offset, text })
}

/// Up to [`CHUNK`] bytes of `path` from `offset` (none when it does not exist yet).
fn read_from(path: &std::path::Path, offset: u64) -> OpResult<Vec<u8>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(OpError::failed(format!("cannot read the log: {e}"))),
    };
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.take(CHUNK).read_to_end(&mut bytes))
        .map_err(|e| OpError::failed(format!("cannot read the log: {e}")))?;
    Ok(bytes)
}
