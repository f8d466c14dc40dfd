//! `fake-vllm`: a thin binary over `spark_control::sim`. Accepts either the fake vLLM
//! flags directly (`fake-vllm --host IP --port P --model REPO ...`) or the same
//! subcommands as `spark-control sim ...` (`fake-vllm sim vllm|speech ...`), so either
//! binary can be `SPARK_SIM_BIN`. Holds no logic of its own.

use clap::Parser;
use spark_control::sim::{self, SimCommand, VllmArgs};

#[derive(Parser)]
#[command(
    name = "fake-vllm",
    about = "Fake vLLM server (spark-control simulator)"
)]
struct Direct {
    #[command(flatten)]
    args: VllmArgs,
}

#[derive(Parser)]
#[command(name = "fake-vllm")]
enum Prefixed {
    /// The simulator subcommands, as in `spark-control sim ...`.
    Sim {
        #[command(subcommand)]
        cmd: SimCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Linked as `vllm` inside a simulated container: the real CLI's shape.
    let argv: Vec<String> = std::env::args().collect();
    if argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "vllm")
    {
        sim::vllm::cli(argv).await?;
        return Ok(());
    }
    let cmd = if std::env::args().nth(1).as_deref() == Some("sim") {
        let Prefixed::Sim { cmd } = Prefixed::parse();
        cmd
    } else {
        SimCommand::Vllm(Direct::parse().args)
    };
    sim::run(cmd).await?;
    Ok(())
}
