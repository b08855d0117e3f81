//! Hostile input: the diagnosis never panics.

use pipedeck::diagnose::{Catalogue, Evidence, Input, diagnose};

/// Hostile input: random mixes of framing lines, fragments of every
/// format the rules read, multi-byte text and truncated lines must never
/// panic, and every evidence line must point inside the log.
#[test]
fn never_panics_on_mangled_logs() {
    let cat = Catalogue::builtin();
    let pieces = [
        "[Container] Running command ",
        "[Container] Command did not exit successfully ",
        " exit status ",
        "[Container] Entering phase BUILD",
        "[Container] Phase complete: PRE_BUILD State: FAILED",
        "[Container] 2026/11/26 20:01:02.113 ",
        "FAILED tests/t.py::",
        "ERROR ",
        ".py",
        "::",
        " - ",
        "not ok 1 - ",
        "  error: |-",
        "● ",
        " FAIL  a.test.mjs > ",
        "  1 failing",
        "  1) ",
        "--- FAIL: ",
        "=== RUN   ",
        "panic: ",
        "error[E0308]: ",
        "error: ",
        " --> ",
        "Error: ",
        "  on main.tf line ",
        "│ ",
        "Traceback (most recent call last):",
        "  File \"x.py\", line ",
        "Exception in thread \"main\" ",
        "npm error code ",
        "npm error ",
        "make: *** [",
        "] Error ",
        "Diff in ",
        "CONFLICT (content): ",
        "é",
        "日本語",
        "🦀",
        "\u{0}",
        "\t",
        "    ",
        ":",
        "(",
        ")",
        "'",
        "\"",
        "137",
        "-1",
        "99999999999999999999",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let n = (next() % 40) as usize;
        let log: Vec<String> = (0..n)
            .map(|_| {
                let k = (next() % 6) as usize;
                let mut l = String::new();
                for _ in 0..k {
                    l.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                }
                // Cut at a random char boundary.
                let cut = (next() % (l.chars().count() as u64 + 1)) as usize;
                l.chars().take(cut.max(l.chars().count() / 2)).collect()
            })
            .collect();
        let found = diagnose(
            &Input {
                log: &log,
                ..Input::default()
            },
            &cat,
        );
        for f in &found {
            for e in &f.evidence {
                if let Evidence::LogLine { line, text } = e {
                    // 1-based.
                    assert!(*line >= 1 && *line <= log.len(), "{f:?}");
                    assert_eq!(&log[*line - 1], text);
                }
            }
        }
    }
}
