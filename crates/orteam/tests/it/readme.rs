//! README's "Using it with a real team" runs as written, top to bottom.
//!
//! The harness reads README.md, takes every ```sh block of that section up to its first
//! sub-heading (a block right after `<!-- readme-test: skip … -->` is left out: installing is
//! replaced by the binary this test built, first on PATH) and runs its commands one by one in
//! one `bash`, in an empty directory, so exports and sourced files carry over as they would in
//! a terminal. Rules:
//!
//! - A command is a line, plus its `\` continuation lines, plus a heredoc's body.
//! - It must exit 0, or N when its comment says `exit N`.
//! - A command ending with `&` runs in the background; the next one starts once it answers over
//!   HTTP (`orteam sim`: `GET /api/v1/models`; `orteam serve`: `GET /health/ready` is 200), never
//!   after a sleep.
//! - README's ports (8787, 8080) become free ones; on PostgreSQL the `ORTEAM_DATABASE_URL` it
//!   exports becomes the test database.
//!
//! Then a few outputs are checked (the steps are found by their text, so a step README drops
//! fails here too).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{Backend, TestDb, bin, both_backends};

const SECTION: &str = "## Using it with a real team";
const SKIP_MARKER: &str = "<!-- readme-test: skip";

/// One command of the walk-through.
#[derive(Debug)]
struct Step {
    text: String,
    expect: i32,
    background: bool,
}

/// What one step printed.
struct Ran {
    text: String,
    code: i32,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Ran {
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
    fn dump(&self) -> String {
        format!(
            "$ {}\n(exit {})\n--- stdout\n{}\n--- stderr\n{}",
            self.text,
            self.code,
            self.stdout(),
            self.stderr()
        )
    }
}

/// The ```sh blocks of README's walk-through, in order.
fn walkthrough_blocks(readme: &str) -> Vec<String> {
    let start = readme
        .find(SECTION)
        .unwrap_or_else(|| panic!("README.md has no {SECTION:?} section"));
    let mut blocks = Vec::new();
    let mut lines = readme[start..].lines().skip(1);
    let mut skip_next = false;
    while let Some(line) = lines.next() {
        if line.starts_with('#') {
            break; // the next heading ends the walk-through
        }
        if line.trim_start().starts_with(SKIP_MARKER) {
            skip_next = true;
            continue;
        }
        if let Some(lang) = line.strip_prefix("```") {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            if lang.trim() == "sh" && !std::mem::take(&mut skip_next) {
                blocks.push(body.join("\n"));
            }
        }
    }
    assert!(!blocks.is_empty(), "no ```sh blocks under {SECTION:?}");
    blocks
}

/// The code of a line without its trailing comment (` # …` outside quotes).
fn code_part(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1] == b' ') => {
                return &line[..i];
            }
            _ => {}
        }
    }
    line
}

/// The heredoc delimiter a line opens (`<<'TOML'`, `<<EOF`), if any.
fn heredoc_delimiter(code: &str) -> Option<String> {
    let rest = &code[code.find("<<")? + 2..];
    let rest = rest.trim_start_matches('-').trim_start();
    let word: String = rest
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

fn steps(block: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut lines = block.lines();
    while let Some(first) = lines.next() {
        if first.trim().is_empty() || first.trim_start().starts_with('#') {
            continue;
        }
        let mut text = first.to_owned();
        let mut last = first;
        while code_part(last).trim_end().ends_with('\\') {
            last = lines.next().expect("a continuation line");
            text.push('\n');
            text.push_str(last);
        }
        if let Some(delim) = heredoc_delimiter(code_part(first)) {
            for l in lines.by_ref() {
                text.push('\n');
                text.push_str(l);
                if l.trim() == delim {
                    break;
                }
            }
        }
        let comment = &first[code_part(first).len()..];
        let expect = comment
            .split("exit ")
            .nth(1)
            .and_then(|r| {
                r.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        let code = code_part(&text).trim_end();
        let background = code.ends_with('&') && !code.ends_with("&&");
        out.push(Step {
            text,
            expect,
            background,
        });
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `bash` the steps run in, one after the other.
struct Shell {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    logs: PathBuf,
    n: usize,
}

impl Shell {
    fn start(dir: &Path) -> Shell {
        let bin_dir = bin().parent().unwrap().to_owned();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let logs = dir.join(".readme-test");
        std::fs::create_dir_all(&logs).unwrap();
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let mut child = tokio::process::Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(&work)
            .env_clear()
            .env("PATH", path)
            .env("HOME", dir)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("bash");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Shell {
            child,
            stdin,
            stdout,
            logs,
            n: 0,
        }
    }

    async fn run(&mut self, step: &Step, text: &str) -> Ran {
        self.n += 1;
        let stdout = self.logs.join(format!("{}.out", self.n));
        let stderr = self.logs.join(format!("{}.err", self.n));
        let redirect = format!(
            "> '{}' 2> '{}' < /dev/null",
            stdout.display(),
            stderr.display()
        );
        let script = if step.background {
            let code = code_part(text).trim_end();
            let code = code.strip_suffix('&').unwrap().trim_end();
            format!("{code} {redirect} &\necho \"__readme_rc__ 0\"\n")
        } else {
            format!("{{\n{text}\n}} {redirect}\necho \"__readme_rc__ $?\"\n")
        };
        self.stdin.write_all(script.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let code = loop {
            let line =
                tokio::time::timeout(std::time::Duration::from_secs(120), self.stdout.next_line())
                    .await
                    .unwrap_or_else(|_| panic!("no answer from the shell for {text:?}"))
                    .unwrap()
                    .unwrap_or_else(|| panic!("the shell ended during {text:?}"));
            if let Some(rc) = line.strip_prefix("__readme_rc__ ") {
                break rc.trim().parse().unwrap();
            }
        };
        Ran {
            text: text.to_owned(),
            code,
            stdout,
            stderr,
        }
    }

    /// Stops what the steps left running in the background, then the shell.
    async fn finish(mut self) {
        let _ = self
            .stdin
            .write_all(b"kill -KILL $(jobs -p) 2>/dev/null; wait; exit 0\n")
            .await;
        let _ = self.stdin.flush().await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait()).await;
    }
}

/// Waits until a background step answers over HTTP.
async fn wait_ready(text: &str, ran: &Ran) {
    let code = code_part(text);
    let addr = code
        .split_whitespace()
        .skip_while(|w| *w != "--listen")
        .nth(1)
        .unwrap_or_else(|| panic!("background step without --listen: {text:?}"));
    let url = if code.contains("orteam sim") {
        format!("http://{addr}/api/v1/models")
    } else if code.contains("orteam serve") {
        format!("http://{addr}/health/ready")
    } else {
        panic!("the harness does not know how to wait for {text:?}");
    };
    let http = reqwest::Client::new();
    let ready = orteam_test_support::poll_until(
        || async {
            http.get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
        |ok| *ok,
    )
    .await;
    assert!(ready.is_ok(), "{url} never answered 200\n{}", ran.dump());
}

both_backends!(readme_walkthrough_runs_as_written);

async fn readme_walkthrough_runs_as_written(backend: Backend) {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (sim_port, serve_port) = (free_port(), free_port());
    let mut shell = Shell::start(dir.path());
    let mut ran: Vec<Ran> = Vec::new();
    for block in walkthrough_blocks(&readme) {
        for step in steps(&block) {
            let mut text = step
                .text
                .replace("127.0.0.1:8787", &format!("127.0.0.1:{sim_port}"))
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{serve_port}"));
            if backend == Backend::Postgres {
                text = text.replace(
                    "ORTEAM_DATABASE_URL=sqlite://orteam.db",
                    &format!("ORTEAM_DATABASE_URL='{}'", db.url),
                );
            }
            let r = shell.run(&step, &text).await;
            assert_eq!(
                r.code,
                step.expect,
                "README step failed (wanted exit {}):\n{}",
                step.expect,
                r.dump()
            );
            if step.background {
                wait_ready(&text, &r).await;
            }
            ran.push(r);
        }
    }
    shell.finish().await;

    let find = |needle: &str| -> &Ran {
        ran.iter()
            .find(|r| r.text.contains(needle))
            .unwrap_or_else(|| panic!("README's walk-through no longer has a step with {needle:?}"))
    };
    let sim = find("orteam sim");
    assert!(
        sim.stdout()
            .contains("management key (OPENROUTER_PROVISIONING_KEY): sk-or-v1-"),
        "{}",
        sim.dump()
    );
    let env_file = std::fs::read_to_string(dir.path().join("work/sim.env")).unwrap();
    for var in [
        "OPENROUTER_BASE_URL",
        "OPENROUTER_PROVISIONING_KEY",
        "OPENROUTER_API_KEY",
    ] {
        assert!(env_file.contains(&format!("export {var}=")), "{env_file}");
    }
    let apply = find("orteam team apply");
    assert!(
        apply.stderr().contains("Apply complete"),
        "{}",
        apply.dump()
    );
    let secrets = std::fs::read_to_string(dir.path().join("work/new-keys.jsonl")).unwrap();
    assert!(secrets.contains("\"member\":\"alice\""), "{secrets}");
    let prune = find("orteam team plan --prune");
    assert!(
        prune.stdout().contains("No changes") && !prune.stdout().contains("Stray"),
        "{}",
        prune.dump()
    );
    let curl = find("curl ");
    let answer: serde_json::Value =
        serde_json::from_str(&curl.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", curl.dump()));
    assert!(
        answer["choices"][0]["message"]["content"].is_string(),
        "{answer}"
    );
    let report = find("orteam report");
    assert!(report.stdout().contains("alice"), "{}", report.dump());
    let raise = find("orteam budget raise alice");
    assert_eq!(raise.code, 0, "{}", raise.dump());
    let rotate = find("orteam keys rotate alice");
    assert!(
        rotate.stdout().contains("alice") || rotate.stderr().contains("alice"),
        "{}",
        rotate.dump()
    );
    let revoke = find("orteam member revoke bob");
    assert!(revoke.stdout().contains("revoked bob"), "{}", revoke.dump());
}

#[test]
fn the_harness_splits_commands_as_a_shell_would() {
    let block = "export A=1   # a comment\n\
                 orteam team plan   # what would change (exit 2 when there are changes)\n\
                 \n\
                 cat > f <<'TOML'\n[org]\nname = \"x\"  # not a step\nTOML\n\
                 curl -sS http://h \\\n  -d '{\"a\": \"#b\"}'\n\
                 orteam sim --listen 127.0.0.1:8787 &   # background\n";
    let s = steps(block);
    let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "export A=1   # a comment",
            "orteam team plan   # what would change (exit 2 when there are changes)",
            "cat > f <<'TOML'\n[org]\nname = \"x\"  # not a step\nTOML",
            "curl -sS http://h \\\n  -d '{\"a\": \"#b\"}'",
            "orteam sim --listen 127.0.0.1:8787 &   # background",
        ]
    );
    assert_eq!(
        s.iter().map(|s| s.expect).collect::<Vec<_>>(),
        [0, 2, 0, 0, 0]
    );
    assert_eq!(
        s.iter().map(|s| s.background).collect::<Vec<_>>(),
        [false, false, false, false, true]
    );
}
