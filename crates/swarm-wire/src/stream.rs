//! Stream translation: a reader turns upstream bytes into [`Delta`]s, a writer turns deltas into
//! the agent's events. Any reader pairs with any writer, so an Anthropic upstream can serve a
//! Responses agent without a detour through OpenAI Chat bytes.

use crate::failure::Failure;
use crate::model::{Delta, Finish};
use crate::usage::Usage;
use crate::WireError;

pub(crate) trait Reader: Send {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Delta>, WireError>;
    /// The upstream body ended.
    fn finish(&mut self) -> Result<Vec<Delta>, WireError>;
}

pub(crate) trait Writer: Send {
    fn write(&mut self, delta: Delta, out: &mut Vec<u8>) -> Result<(), WireError>;
    /// Closing events; [`WireError::Truncated`] when the upstream never said why it stopped.
    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), WireError>;
    /// An error event in the agent's format, placed where the agent's stream allows one.
    fn fail(&mut self, failure: &Failure, out: &mut Vec<u8>);
}

/// A stateful converter from an upstream's event stream to an agent's: feed it the upstream
/// body's chunks as they arrive (split anywhere), send what it returns.
pub struct StreamConverter {
    reader: Box<dyn Reader>,
    /// `None`: the agent speaks the upstream's format and gets the bytes unchanged.
    writer: Option<Box<dyn Writer>>,
    usage: Option<Usage>,
    failed: Option<Failure>,
    /// A passed-through stream the reader could not follow: its bytes still go to the agent.
    blind: bool,
    /// The upstream said why it stopped.
    finished: bool,
}

impl StreamConverter {
    pub(crate) fn new(reader: Box<dyn Reader>, writer: Option<Box<dyn Writer>>) -> Self {
        StreamConverter { reader, writer, usage: None, failed: None, blind: false, finished: false }
    }

    /// Upstream bytes in, agent bytes out.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, WireError> {
        if self.writer.is_some() {
            let deltas = self.reader.feed(bytes)?;
            return self.write(deltas);
        }
        // Passed through, the upstream's bytes are the answer even where usage cannot be read.
        if !self.blind {
            match self.reader.feed(bytes) {
                Ok(deltas) => {
                    self.observe(&deltas);
                }
                Err(_) => self.blind = true,
            }
        }
        Ok(bytes.to_vec())
    }

    /// The upstream body ended: the agent's closing events. An error means the upstream stopped
    /// without finishing; send [`StreamConverter::fail`]'s bytes then.
    pub fn finish(&mut self) -> Result<Vec<u8>, WireError> {
        if self.writer.is_none() {
            if !self.blind {
                if let Ok(deltas) = self.reader.finish() {
                    self.observe(&deltas);
                }
            }
            return Ok(Vec::new());
        }
        let deltas = self.reader.finish()?;
        let mut out = self.write(deltas)?;
        if let Some(w) = &mut self.writer {
            w.end(&mut out)?;
        }
        Ok(out)
    }

    /// The agent's in-stream error event for `failure` (nothing for a passed-through stream,
    /// whose bytes are the upstream's own).
    pub fn fail(&mut self, failure: &Failure) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(w) = &mut self.writer {
            w.fail(failure, &mut out);
        }
        out
    }

    /// The usage the upstream reported so far (its last report wins: some send it cumulatively).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// An error the upstream reported inside its stream, if any.
    pub fn upstream_failure(&self) -> Option<&Failure> {
        self.failed.as_ref()
    }

    fn observe(&mut self, deltas: &[Delta]) -> Vec<u8> {
        for d in deltas {
            match d {
                Delta::Usage(u) => self.usage = Some(*u),
                Delta::Failed(f) => self.failed = Some(f.clone()),
                Delta::Finish(_) => self.finished = true,
                _ => {}
            }
        }
        Vec::new()
    }

    fn write(&mut self, deltas: Vec<Delta>) -> Result<Vec<u8>, WireError> {
        self.observe(&deltas);
        let mut out = Vec::new();
        if let Some(w) = &mut self.writer {
            for d in deltas {
                match d {
                    Delta::Failed(f) => w.fail(&f, &mut out),
                    Delta::Done => {
                        // An upstream that ends its stream on purpose without a reason stopped.
                        if !self.finished {
                            w.write(Delta::Finish(Finish::Stop), &mut out)?;
                        }
                        w.end(&mut out)?;
                    }
                    d => w.write(d, &mut out)?,
                }
            }
        }
        Ok(out)
    }
}
