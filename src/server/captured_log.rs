//! Log output captured in memory, for the unit tests of what is logged.

use std::sync::{Arc, Mutex};

/// A log writer (`MakeWriter` through [`Captured::writer`]) that keeps what
/// it is given.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// A writer of this capture, for a layer.
    pub fn writer(&self) -> impl Fn() -> Captured + Clone + Send + Sync + 'static {
        let captured = self.clone();
        move || captured.clone()
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
