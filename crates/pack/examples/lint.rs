//! Lints a pack folder and prints the findings: `cargo run -p gatehouse-pack --example lint -- DIR [text|json|sarif]`.
//! The real command is `gatehouse lint`; this example exists to try the crate on its own.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: lint DIR [text|json|sarif]");
        return ExitCode::from(2);
    };
    let format = args.next().unwrap_or_else(|| "text".to_owned());
    let loaded = match gatehouse_pack::load(std::path::Path::new(&dir)) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let d = &loaded.diagnostics;
    let s = &loaded.sources;
    match format.as_str() {
        "json" => println!("{:#}", gatehouse_pack::render::json(d, s)),
        "sarif" => println!("{:#}", gatehouse_pack::render::sarif(d, s)),
        _ => print!("{}", gatehouse_pack::render::text(d, s)),
    }
    if loaded.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
