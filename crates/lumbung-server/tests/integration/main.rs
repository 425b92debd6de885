//! End-to-end tests: the real server on 127.0.0.1:0 over a temporary copy of sample knowledge
//! bases, with the real model and indexes, called by real tonic clients.

mod auth;
mod bad_input;
mod harness;
mod knowledge;
mod metrics;
mod overload;
mod reflection;
mod restart;
mod tls;
mod watch;
