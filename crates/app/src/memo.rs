//! Memos over data the server loads: memos in the browser only.
//!
//! On the server a resource resolves on another thread than the render. A
//! `Memo` that is computing at that moment has already read the old value;
//! the resolution marks it dirty, and then the computation finishes and marks
//! it clean (reactive_graph 0.2), so it keeps the old value for good. The page
//! is then rendered with part of it as if still loading (seen once in CI: a
//! batch page without its heading), and the browser, which reads the resolved
//! value, fails to hydrate it. The test below shows the race.

use leptos::prelude::*;

/// A `Memo` of `f` in the browser (it recomputes, and notifies, only when
/// what it reads changes). On the server, `f` itself, run at each read.
pub fn browser_memo<T>(f: impl Fn() -> T + Send + Sync + 'static) -> Signal<T>
where
    T: Clone + PartialEq + Send + Sync + 'static,
{
    #[cfg(feature = "ssr")]
    {
        Signal::derive(f)
    }
    #[cfg(not(feature = "ssr"))]
    {
        Memo::new(move |_| f()).into()
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::sync::{Arc, Mutex};

    /// A change made on another thread while a memo computes, after it read
    /// its source: the memo keeps the old value, `browser_memo` does not.
    #[test]
    fn a_change_while_a_memo_computes_is_not_lost_on_the_server() {
        let owner = Owner::new();
        owner.set();
        let source = ArcRwSignal::new(0);
        let (read_tx, read_rx) = channel::<()>();
        let (go_tx, go_rx) = channel::<()>();
        let go_rx = Arc::new(Mutex::new(go_rx));
        // Reads its source, then waits for the other thread's change.
        let slow = {
            let source = source.clone();
            move || {
                let v = source.get();
                let _ = read_tx.send(());
                if let Ok(rx) = go_rx.lock() {
                    let _ = rx.recv();
                }
                v
            }
        };
        let memo = ArcMemo::new(move |_| slow());
        let derived = browser_memo({
            let source = source.clone();
            move || source.get()
        });
        let writer = std::thread::spawn(move || {
            read_rx.recv().expect("the memo read its source");
            source.set(1);
            go_tx.send(()).expect("the memo waits");
        });
        assert_eq!(memo.get(), 0);
        writer.join().expect("the writer finished");
        // reactive_graph's race: if this fails, it is fixed upstream and
        // `browser_memo` can become a plain `Memo` again.
        assert_eq!(
            memo.get(),
            0,
            "the memo kept the value from before the change"
        );
        assert_eq!(
            derived.get(),
            1,
            "browser_memo reads the value after the change"
        );
    }
}
