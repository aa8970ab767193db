//! `launch logs`: a container's log, its two streams kept apart.

use super::{connect, container_name, existing_container, runtime};
use crate::cli::{Global, LogsArgs};
use launch::engine::{Engine, LogOptions};
use launch::error::Result;
use launch::exit::Exit;

pub fn run(args: &LogsArgs, global: &Global) -> Result<Exit> {
    let name = container_name(&args.target)?;
    let options = LogOptions {
        follow: args.follow,
        tail: args.tail,
        since: args.since,
        timestamps: args.timestamps,
    };
    runtime()?.block_on(async {
        let engine = connect(global).await?;
        let container = existing_container(&engine, &name).await?;
        engine
            .logs(
                &container.id,
                &options,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
            .await?;
        Ok(Exit::Ok)
    })
}
