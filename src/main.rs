//! The `kubesim` command line. The scenario runner (`kubesim run`,
//! `kubesim validate`) is being built under issue 2; until it lands this
//! binary says so and exits non-zero rather than pretending to run anything.

fn main() {
    eprintln!(
        "kubesim: the scenario runner (`kubesim run`, `kubesim validate`) is not built yet; \
         see README.md for what runs today"
    );
    std::process::exit(2);
}
