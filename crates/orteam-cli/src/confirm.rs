//! Asking before a destructive command: on a terminal a `[y/N]` question; without one, a
//! refusal unless `--yes` was given (a script must say so explicitly).

use std::io::{IsTerminal, Write};

/// Whether to go on with `action`. `--yes` goes on without asking; stdin not a terminal and no
/// `--yes` is an error naming `--yes`; otherwise asks `question [y/N]` on stderr and reads the
/// answer from stdin (anything but yes is no, and says that nothing changed).
pub fn confirm(question: &str, yes: bool, action: &str) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to {action} without --yes: stdin is not a terminal, so nobody can confirm"
        );
    }
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    let go = matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes");
    if !go {
        writeln!(err, "Nothing changed.")?;
    }
    Ok(go)
}
