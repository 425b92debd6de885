//! Integration tests of the `lumbung` binary run as a process, with the real model and indexes.

mod backup;
mod churn;
mod console;
mod crash;
mod deploy_files;
mod disk_full;
mod eval;
mod hand_off;
mod harness;
mod mcp;
mod scale;
mod webdriver;
