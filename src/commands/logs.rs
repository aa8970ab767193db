//! `launch logs`: a container's log, its two streams kept apart.

use super::{connect, container_target, existing_container, runtime, store};
use crate::cli::{Global, LogsArgs};
use launch::engine::{Engine, LogOptions};
use launch::error::Result;
use launch::exit::Exit;

pub fn run(args: &LogsArgs, global: &Global) -> Result<Exit> {
    let (name, acting) = container_target(&args.target, global)?;
    let store = store(global);
    let options = LogOptions {
        follow: args.follow,
        tail: args.tail,
        since: args.since,
        timestamps: args.timestamps,
    };
    runtime()?.block_on(async {
        let docker = connect(global).await?;
        let engine = launch::engine::Gate::new(&docker, &store, acting);
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
