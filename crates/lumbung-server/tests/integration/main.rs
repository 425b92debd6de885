//! End-to-end tests: the real server on 127.0.0.1:0 over a temporary copy of sample knowledge
//! bases, with the real model and indexes, called by real tonic clients.

// Tests set up folders and wait on the disk directly; the server's own code is held to
// clippy.toml's list of blocking calls.
#![allow(clippy::disallowed_methods)]

mod auth;
mod bad_input;
mod generations;
mod harness;
mod hostile;
mod http;
mod knowledge;
mod metrics;
mod overload;
mod qdrant;
mod reflection;
mod restart;
mod tls;
mod watch;
