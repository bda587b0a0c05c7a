//! One module per subcommand.

mod simulate;

use anyhow::bail;

use crate::cli::{Cli, Command};

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Simulate(args) => simulate::run(args).await,
        other => bail!(
            "`stocklake {}` is not built yet",
            format!("{other:?}")
                .split('(')
                .next()
                .unwrap_or("")
                .to_lowercase()
        ),
    }
}
