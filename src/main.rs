//! The `convoy` binary: parse the command line, call the library, map the
//! outcome to a documented exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    convoy::cli::main()
}
