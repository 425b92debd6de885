//! CPU priority of background threads, so that queries keep the cores while ingest runs.

/// Raises the nice value of the calling thread to `niceness` (0 to 19; higher yields more).
/// Threads it starts afterwards inherit it. On Linux the nice value belongs to the thread,
/// not the process, so the service's other threads keep their priority. A failure (or
/// another OS) leaves the priority as it was: ingest is then only slower to yield.
pub fn lower_current_thread_priority(niceness: i32) {
    if niceness <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(err) = rustix::process::setpriority_process(Some(thread), niceness.min(19)) {
            eprintln!("lumbung: could not lower a background thread's priority: {err}");
        }
    }
}

/// Raises the nice value of thread `thread` of this process to `niceness`, as
/// [`lower_current_thread_priority`] does for the calling thread.
pub fn lower_thread_priority(thread: i32, niceness: i32) {
    if niceness <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let Some(pid) = rustix::process::Pid::from_raw(thread) else {
            return;
        };
        if let Err(err) = rustix::process::setpriority_process(Some(pid), niceness.min(19)) {
            eprintln!("lumbung: could not lower thread {thread}'s priority: {err}");
        }
    }
}

/// The ids of this process's threads now (Linux; empty elsewhere): compared before and after
/// a library starts worker threads of its own, they name those threads.
pub fn process_threads() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The nice value of thread `thread` of this process.
#[cfg(target_os = "linux")]
pub fn thread_niceness(thread: i32) -> i32 {
    rustix::process::Pid::from_raw(thread)
        .and_then(|pid| rustix::process::getpriority_process(Some(pid)).ok())
        .unwrap_or(0)
}

/// The nice value of the calling thread.
#[cfg(target_os = "linux")]
pub fn current_thread_niceness() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn only_the_calling_thread_and_its_children_yield() {
        let before = current_thread_niceness();
        let (mine, child) = std::thread::spawn(|| {
            lower_current_thread_priority(7);
            let child = std::thread::spawn(current_thread_niceness).join().unwrap();
            (current_thread_niceness(), child)
        })
        .join()
        .unwrap();
        assert_eq!((mine, child), (before.max(7), before.max(7)));
        assert_eq!(current_thread_niceness(), before, "the caller is untouched");
    }

    #[test]
    fn threads_started_meanwhile_are_found_and_lowered() {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let before = process_threads();
        let worker = std::thread::spawn(move || {
            started_tx
                .send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            stop_rx.recv().unwrap();
            current_thread_niceness()
        });
        let tid = started_rx.recv().unwrap();
        let new: Vec<i32> = process_threads()
            .into_iter()
            .filter(|t| !before.contains(t))
            .collect();
        assert!(new.contains(&tid), "{new:?} should hold {tid}");
        lower_thread_priority(tid, 9);
        assert_eq!(thread_niceness(tid), thread_niceness(tid).max(9));
        stop_tx.send(()).unwrap();
        assert!(worker.join().unwrap() >= 9);
    }
}
