//! Panics in third-party parsers become errors for the one file that caused them.
//!
//! `pdf-extract`, `calamine` and the zip and HTML parsers are fed untrusted bytes; some panic on
//! malformed input. One bad upload must not take down the ingest worker, so every call into
//! them runs under `catch_unwind`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{Error, Result};

/// Runs `f`, turning a panic into the error `on_panic` builds from a message that says where it
/// happened (`context`) and what the panic said.
pub(crate) fn guarded<T>(
    context: &str,
    on_panic: impl FnOnce(String) -> Error,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        Err(on_panic(format!("{context}: parser panicked: {message}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors_naming_the_context() {
        let err = guarded::<()>("page 7", Error::Pdf, || panic!("MediaBox")).unwrap_err();
        assert_eq!(err.to_string(), "pdf: page 7: parser panicked: MediaBox");
        let owned =
            guarded::<()>("x", Error::Docx, || panic!("{}", String::from("boom"))).unwrap_err();
        assert_eq!(owned.to_string(), "docx: x: parser panicked: boom");
    }

    #[test]
    fn results_pass_through_unchanged() {
        assert_eq!(guarded("x", Error::Pdf, || Ok(5)).unwrap(), 5);
        assert!(matches!(
            guarded::<()>("x", Error::Pdf, || Err(Error::Empty)),
            Err(Error::Empty)
        ));
    }
}
