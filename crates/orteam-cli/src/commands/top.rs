//! `orteam top`: the live terminal dashboard (crate orteam-tui).

use std::process::ExitCode;

use anyhow::Context;
use secrecy::SecretString;

use crate::args::TopArgs;

pub async fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let token = args.token.filter(|t| !t.is_empty()).with_context(|| {
        format!(
            "no admin token: set {} to the token `orteam serve` was started with (or pass --token)",
            orteam_core::env::ORTEAM_ADMIN_TOKEN
        )
    })?;
    let interval = orteam_team::file::parse_duration(&args.interval)
        .map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    anyhow::ensure!(
        interval >= std::time::Duration::from_millis(200),
        "--interval must be at least 200ms"
    );
    orteam_tui::run(orteam_tui::TopOptions {
        url: args.url,
        token: SecretString::from(token),
        interval,
        range: orteam_web::Range::Hour,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
