//! Integration tests of the `lumbung` binary run as a process, with the real model and indexes.

mod crash;
mod eval;
mod hand_off;
mod harness;
mod scale;
