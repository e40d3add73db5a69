//! `orteam demo`: the whole product in one command, with no account, no network and no
//! configuration. A local simulator stands in for OpenRouter, an embedded SQLite ledger lives
//! in a fresh directory, a sample team is applied, the gateway serves it, and realistic traffic
//! plays for a while: normal use, a member clamped then refused by her budget, a disallowed
//! model downgraded, a spike, a key rotation. Then a summary, and the gateway keeps serving
//! (with its dashboard) until Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Datelike;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use orteam_core::{ControllableClock, Money, SharedClock, env};
use orteam_gateway::GatewayConfig;
use orteam_ledger::{GroupBy, Ledger, LedgerOptions, SecretKey, UsageQuery};
use orteam_team::{CollectSecrets, PlanOptions, SecretKind};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::args::DemoArgs;

/// The sample team: 6 members, 3 tiers, member/team/org budgets, both key modes.
pub const DEMO_TEAM: &str = r#"# The orteam demo team (written by `orteam demo`).
[org]
name = "acme"
budget = { monthly = "50.00" }
keep_keys = ["orteam-shared"]

[tiers.basic]
models = ["openai/gpt-4o-mini", "meta-llama/llama-3.1-8b-instruct"]
on_disallowed = "downgrade"
downgrade_to = "openai/gpt-4o-mini"
rate_limit = { requests_per_minute = 600 }

[tiers.pro]
models = ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-3.5-sonnet"]

[tiers.enterprise]
models = "*"

[teams.backend]
budget = { monthly = "30.00" }
member_budget = { daily = "2.00" }

[teams.research]
budget = { monthly = "40.00" }

[[members]]
id = "alice"
name = "Alice"
team = "backend"
tier = "enterprise"
budget = { daily = "5.00", monthly = "20.00" }

[[members]]
id = "bob"
name = "Bob"
team = "backend"
tier = "basic"

[[members]]
id = "carol"
name = "Carol"
team = "research"
tier = "pro"
budget = { daily = "0.02" }

[[members]]
id = "dave"
name = "Dave"
team = "research"
tier = "pro"
budget = { daily = "20.00" }

[[members]]
id = "erin"
name = "Erin"
team = "research"
tier = "basic"
key = { mode = "direct", limit = "2.00", limit_reset = "daily", expires_in = "90d" }

[[members]]
id = "frank"
name = "Frank"
team = "backend"
tier = "enterprise"
key = { mode = "gateway", rotate_every = "30d", grace = "1h" }
"#;

/// What the traffic produced, for the summary (and the demo's test).
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    streamed: u64,
    clamped: u64,
    refused_budget: u64,
    downgraded: u64,
    denied_model: u64,
    spike: u64,
    rotated: bool,
    direct: u64,
    errors: u64,
    /// Per member: (clamped, downgraded).
    by_member: BTreeMap<String, (u64, u64)>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let duration = Duration::from_secs(args.duration.max(1));
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("orteam-demo-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    let mut err = std::io::stderr();
    writeln!(err, "orteam demo: working in {}", dir.display())?;

    // 1. A local OpenRouter.
    let sim = orteam_sim::spawn(orteam_sim::SimConfig {
        initial_credits: Money::from_cents(100_000),
        ..Default::default()
    })
    .await
    .context("starting the simulator")?;
    let (shared_key, _) = sim.create_key("orteam-shared", None, None);
    writeln!(
        err,
        "  simulator (stands in for OpenRouter): {}",
        sim.base_url()
    )?;

    // 2. The team file, applied to a fresh ledger.
    let team_path = dir.join("team.toml");
    std::fs::write(&team_path, DEMO_TEAM)?;
    let demo_clock = Arc::new(ControllableClock::new());
    let clock: SharedClock = demo_clock.clone();
    let secret_key = SecretKey::generate_base64();
    let db_url = format!("sqlite://{}", dir.join("orteam.db").display());
    let admin = Ledger::open(
        &db_url,
        LedgerOptions::admin()
            .with_clock(clock.clone())
            .with_secret_key(SecretKey::from_base64(&secret_key)?),
    )
    .await?;
    let management = orteam_openrouter::Client::builder()
        .base_url(sim.base_url())
        .api_key(SecretString::from(sim.provisioning_key().to_owned()))
        .cache_ttl(None)
        .build()?;
    let team = orteam_team::file::load(&team_path)?;
    orteam_team::plan::check_models(&team, &management).await?;
    let observed = orteam_team::plan::observe(&admin, &management).await?;
    let plan = orteam_team::plan::plan(
        &team,
        &observed,
        &PlanOptions {
            now: clock.now(),
            prune: false,
            unused_days: 30,
        },
    );
    let mut secrets = CollectSecrets::default();
    let mut applied = Vec::new();
    {
        let mut progress = |line: &str| applied.push(line.to_owned());
        let mut cx = orteam_team::ApplyContext {
            ledger: &admin,
            client: &management,
            now: clock.now(),
            sink: &mut secrets,
            actor: "demo".into(),
            progress: &mut progress,
        };
        orteam_team::apply::apply(&plan, &mut cx).await?;
    }
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut direct: HashMap<String, String> = HashMap::new();
    for s in &secrets.0 {
        let target = match s.kind {
            SecretKind::Virtual => &mut keys,
            SecretKind::Direct => &mut direct,
            // The demo's team file declares no admin tokens.
            SecretKind::AdminToken => continue,
        };
        target.insert(s.member.clone(), s.secret.expose_secret().to_owned());
    }
    writeln!(
        err,
        "  team applied: {} changes ({} members, {} keys issued); file: {}",
        applied.len(),
        team.members.len(),
        secrets.0.len(),
        team_path.display()
    )?;

    // 3. The gateway.
    let admin_token =
        format!("demo-{}", &SecretKey::generate_base64()[..32]).replace(['/', '+', '='], "x");
    let env: HashMap<&str, String> = [
        (env::OPENROUTER_BASE_URL, sim.base_url()),
        (env::ORTEAM_DATABASE_URL, db_url.clone()),
        (env::OPENROUTER_API_KEY, shared_key.clone()),
        (env::ORTEAM_ADMIN_TOKEN, admin_token.clone()),
    ]
    .into();
    let mut config = GatewayConfig::load(None, |k| env.get(k).cloned())?;
    config.workers = 2;
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            writeln!(err, "  {} is busy ({e}); using a free port", args.listen)?;
            std::net::TcpListener::bind("127.0.0.1:0")?
        }
    };
    config.listen = listener.local_addr()?;
    let shutdown = crate::shutdown::on_signal();
    let running = orteam_gateway::start(config, listener, clock.clone(), shutdown.clone()).await?;
    let base = running.base_url();
    let root = base.trim_end_matches("/v1").to_owned();
    writeln!(err, "  gateway (OpenAI-compatible): {base}")?;

    // 4. Traffic.
    let http = reqwest::Client::new();
    let tally = drive_traffic(
        &http,
        &base,
        &sim.base_url(),
        &keys,
        &direct,
        &admin,
        &clock,
        duration,
        &mut secrets,
        &management,
    )
    .await;

    // 5. The summary, then next Monday's weekly report: the simulated clocks jump to Monday
    // 09:00 UTC so that today's traffic is "last week".
    // The summary and the report are written to stdout in one piece at the end, so no log line
    // (stderr, from the gateway's threads) lands inside them on a terminal.
    let mut out: Vec<u8> = Vec::new();
    print_summary(&mut out, &running.gateway.ledger, &tally).await?;
    let now = clock.now();
    let days_to_monday = 7 - u64::from(now.weekday().num_days_from_monday());
    let monday =
        orteam_core::window::midnight(now.date_naive() + chrono::Days::new(days_to_monday))
            + chrono::TimeDelta::hours(9);
    let jump = monday - now;
    demo_clock.set_offset(jump);
    sim.clock().set_offset(jump);
    let upstream = orteam_insight::Upstream::from_keys(
        Some(&sim.base_url()),
        Some(SecretString::from(sim.provisioning_key().to_owned())),
        Some(SecretString::from(shared_key.clone())),
    )?;
    let weekly = orteam_insight::weekly_report(
        &admin,
        &upstream,
        &orteam_insight::AnomalyConfig::default(),
        &orteam_insight::NoProgress,
    )
    .await?;
    let spike_flagged = weekly
        .anomalies
        .iter()
        .any(|a| a.subject == "dave" || a.subject.contains("claude"));
    writeln!(out)?;
    writeln!(
        out,
        "Weekly report, as the team lead gets it on Monday {} (simulated clock moved forward)",
        monday.date_naive()
    )?;
    super::report::write_weekly(&mut out, &weekly)?;
    // The report is written: back to real time, so the gateway, the dashboard and `top` show
    // today's traffic as today's.
    demo_clock.set_offset(chrono::TimeDelta::zero());
    sim.clock().set_offset(chrono::TimeDelta::zero());
    writeln!(out)?;
    writeln!(
        out,
        "  spike flagged as an anomaly: {}",
        if spike_flagged { "yes (dave)" } else { "no" }
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Gateway:   {base}   (OpenAI SDK: base_url={base}, api_key=<an ot-… key>)"
    )?;
    writeln!(
        out,
        "Dashboard: {root}/dashboard   admin token: {admin_token}"
    )?;
    writeln!(out, "Metrics:   {root}/metrics   (Bearer: the admin token)")?;
    writeln!(out, "Files:     {}", dir.display())?;
    {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&out)?;
        stdout.flush()?;
    }
    if args.no_wait {
        shutdown.cancel();
    } else {
        writeln!(err, "Serving until Ctrl-C …")?;
    }
    running.wait().await?;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn chat(model: &str, tokens: u32, max_tokens: Option<u32>, stream: bool) -> Value {
    let mut b = json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("Summarise our roadmap. [[sim:tokens={tokens}]]")}],
        "stream": stream,
    });
    if let Some(m) = max_tokens {
        b["max_tokens"] = json!(m);
    }
    b
}

#[allow(clippy::too_many_arguments)]
async fn drive_traffic(
    http: &reqwest::Client,
    base: &str,
    sim_base: &str,
    keys: &HashMap<String, String>,
    direct: &HashMap<String, String>,
    admin: &Ledger,
    clock: &SharedClock,
    duration: Duration,
    secrets: &mut CollectSecrets,
    management: &orteam_openrouter::Client,
) -> Tally {
    let mut tally = Tally::default();
    let mut keys = keys.clone();
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(duration.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("  traffic {bar:40.cyan/blue} {elapsed}/{duration} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut tick: u64 = 0;
    let normal = [
        ("alice", "anthropic/claude-3.5-sonnet"),
        ("alice", "openai/gpt-4o"),
        ("bob", "openai/gpt-4o-mini"),
        ("dave", "openai/gpt-4o-mini"),
        ("frank", "openai/gpt-4o"),
        ("bob", "meta-llama/llama-3.1-8b-instruct"),
    ];
    while started.elapsed() < duration {
        tick += 1;
        let phase = started.elapsed().as_secs_f64() / duration.as_secs_f64();
        // Normal use by everyone.
        let (member, model) = normal[(tick as usize) % normal.len()];
        let stream = tick.is_multiple_of(3);
        send(
            http,
            base,
            &keys,
            member,
            chat(model, 20 + (tick % 60) as u32, Some(200), stream),
            &mut tally,
        )
        .await;
        // Carol works hard on a small daily budget: clamped, then refused.
        if tick.is_multiple_of(2) {
            send(
                http,
                base,
                &keys,
                "carol",
                chat("openai/gpt-4o", 400, Some(4000), false),
                &mut tally,
            )
            .await;
        }
        // Bob asks for a model his tier does not have: downgraded.
        if tick.is_multiple_of(7) {
            send(
                http,
                base,
                &keys,
                "bob",
                chat("anthropic/claude-3.5-sonnet", 30, Some(100), false),
                &mut tally,
            )
            .await;
        }
        // Erin uses her own OpenRouter key directly (OpenRouter enforces her limit).
        if tick.is_multiple_of(5)
            && let Some(k) = direct.get("erin")
        {
            let r = http
                .post(format!("{sim_base}/chat/completions"))
                .bearer_auth(k)
                .json(&chat("openai/gpt-4o-mini", 30, Some(50), false))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                tally.direct += 1;
            }
        }
        // A spike: at 60 % of the run, Dave's script loops 100 times on the expensive model
        // (about $6, far above anything he spent before: flagged in the weekly report).
        if phase >= 0.6 && tally.spike == 0 {
            for _ in 0..100 {
                send(
                    http,
                    base,
                    &keys,
                    "dave",
                    chat("anthropic/claude-3.5-sonnet", 4000, Some(4000), false),
                    &mut tally,
                )
                .await;
                tally.spike += 1;
            }
        }
        // Frank's key is rotated half-way; his new key is used from then on.
        if phase >= 0.5 && !tally.rotated {
            match orteam_team::rotate_member(
                admin,
                Some(management),
                "frank",
                Some(Duration::from_secs(3600)),
                clock.now(),
                secrets,
            )
            .await
            {
                Ok(r) => {
                    if let Some(s) = &r.secret {
                        keys.insert("frank".into(), s.expose_secret().to_owned());
                    }
                    tally.rotated = true;
                }
                Err(e) => {
                    bar.println(format!("  rotation failed: {e}"));
                    tally.errors += 1;
                    tally.rotated = true;
                }
            }
        }
        bar.set_position(started.elapsed().as_millis() as u64);
        bar.set_message(format!(
            "{} ok, {} clamped, {} refused",
            tally.ok, tally.clamped, tally.refused_budget
        ));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    bar.finish_and_clear();
    tally
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    keys: &HashMap<String, String>,
    member: &str,
    body: Value,
    tally: &mut Tally,
) {
    let Some(key) = keys.get(member) else {
        return;
    };
    let stream = body["stream"] == true;
    let Ok(resp) = http
        .post(format!("{base}/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
    else {
        tally.errors += 1;
        return;
    };
    let h = resp.headers();
    let clamped = h.contains_key("x-orteam-max-tokens") && body.get("max_tokens").is_some();
    let downgraded = h.contains_key("x-orteam-model");
    match resp.status().as_u16() {
        200 => {
            let _ = resp.bytes().await;
            tally.ok += 1;
            tally.streamed += u64::from(stream);
            tally.clamped += u64::from(clamped);
            tally.downgraded += u64::from(downgraded);
            let m = tally.by_member.entry(member.to_owned()).or_default();
            m.0 += u64::from(clamped);
            m.1 += u64::from(downgraded);
        }
        402 => tally.refused_budget += 1,
        403 => tally.denied_model += 1,
        _ => tally.errors += 1,
    }
}

async fn print_summary(out: &mut impl Write, ledger: &Ledger, t: &Tally) -> anyhow::Result<()> {
    writeln!(out, "What happened")?;
    writeln!(
        out,
        "  {} requests answered ({} streamed), {} direct-key calls to OpenRouter",
        t.ok, t.streamed, t.direct
    )?;
    writeln!(
        out,
        "  {} answers clamped to the remaining budget (x-orteam-max-tokens)",
        t.clamped
    )?;
    writeln!(
        out,
        "  {} requests refused: budget exhausted (402)",
        t.refused_budget
    )?;
    writeln!(
        out,
        "  {} requests downgraded to an allowed model (x-orteam-model)",
        t.downgraded
    )?;
    writeln!(
        out,
        "  {} spike requests from dave on an expensive model",
        t.spike
    )?;
    writeln!(
        out,
        "  key rotated: {}",
        if t.rotated {
            "frank (old key valid for 1h)"
        } else {
            "no"
        }
    )?;
    writeln!(out)?;
    // Every answer the traffic received was settled; commit them all before reading.
    ledger.flush().await?;
    let usage = ledger
        .usage(&UsageQuery {
            group_by: vec![GroupBy::Member],
            ..Default::default()
        })
        .await?;
    let status = ledger.all_budget_status().await?;
    // The gateway's own ledger: its refusal counts are written before they are read.
    let refusals = orteam_ledger::refusals::summarize(
        &ledger
            .refusals(orteam_ledger::RefusalFilter::default())
            .await?,
    );
    let mut members: BTreeMap<String, (u64, Money)> = BTreeMap::new();
    for g in &usage {
        members.insert(g.member.clone().unwrap_or_default(), (g.requests, g.cost));
    }
    for r in refusals.iter().filter(|r| !r.member_id.is_empty()) {
        members
            .entry(r.member_id.clone())
            .or_insert((0, Money::ZERO));
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "member",
        "requests",
        "spend",
        "tightest budget",
        "used",
        "clamped",
        "downgraded",
        "refused",
    ]);
    for (member, (requests, cost)) in &members {
        let tightest = status
            .iter()
            .filter(|s| s.scope.as_str() == "member" && s.scope_id == *member)
            .min_by(|a, b| a.remaining.cmp(&b.remaining));
        let (budget, used) = match tightest {
            Some(s) => (
                format!("{} {}", s.limit.usd(), s.window),
                s.spent.percent_of(s.limit),
            ),
            None => ("team/org only".into(), "-".into()),
        };
        let (clamped, downgraded) = t.by_member.get(member).copied().unwrap_or_default();
        let refused: Vec<String> = refusals
            .iter()
            .filter(|r| r.member_id == *member)
            .map(|r| format!("{} ({})", r.count, refused_by(r)))
            .collect();
        table.add_row(vec![
            member.clone(),
            requests.to_string(),
            cost.usd(),
            budget,
            used,
            clamped.to_string(),
            downgraded.to_string(),
            if refused.is_empty() {
                "0".to_owned()
            } else {
                refused.join(", ")
            },
        ]);
    }
    // The same totals the dashboard and `top` show for today (the demo's traffic is today's).
    let total_requests: u64 = members.values().map(|(r, _)| r).sum();
    let total_spend: Money = members.values().map(|(_, c)| *c).sum();
    let total_refused: u64 = refusals.iter().map(|r| r.count).sum();
    table.add_row(vec![
        "total".to_owned(),
        total_requests.to_string(),
        total_spend.usd(),
        String::new(),
        String::new(),
        t.clamped.to_string(),
        t.downgraded.to_string(),
        total_refused.to_string(),
    ]);
    writeln!(out, "Spend by member (exact, from the ledger)")?;
    writeln!(out, "{table}")?;
    Ok(())
}

/// What refused a member's requests, in a few words (`daily budget`, `tier pro`).
fn refused_by(r: &orteam_ledger::RefusalSummary) -> String {
    match r.reason.as_str() {
        "budget_exceeded" => {
            let window = r.detail.rsplit(' ').next().unwrap_or_default();
            format!("{window} budget")
        }
        "model_not_allowed" => r.detail.clone(),
        "rate_limit_exceeded" => "rate limit".to_owned(),
        other => other.replace('_', " "),
    }
}
