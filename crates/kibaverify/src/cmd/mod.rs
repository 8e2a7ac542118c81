//! One module per subcommand. Each exposes `Args` (clap) and `run(Args)`.
pub mod digest;
pub mod gate;
pub mod referrers;
pub mod verify_bundle;
