//! The embedded component may import nothing beyond what the host grants: the contract's
//! types (contract 0.3 has no functions to import). The WASI interfaces a std-built guest names are linked as traps,
//! so they must stay within the harmless set below; anything else (sockets, filesystem,
//! clocks, random, HTTP) fails this test.

use ftp_tunnel::runtime::Runtime;

/// Granted for real.
const GRANTED: &[&str] = &["ftp-tunnel:plugin/types@0.3.0"];

/// Named by std's wasm32-wasip2 runtime (stdio for panics, args/env, exit), linked as traps.
const TRAPPED_PREFIXES: &[&str] = &[
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-input@",
    "wasi:cli/terminal-output@",
    "wasi:cli/terminal-stdin@",
    "wasi:cli/terminal-stdout@",
    "wasi:cli/terminal-stderr@",
    "wasi:io/error@",
    "wasi:io/streams@",
    "wasi:io/poll@",
];

#[test]
fn the_component_imports_no_capability_beyond_the_contract_types() {
    let runtime = Runtime::new().expect("the embedded component loads");
    let imports = runtime.component_imports();
    assert!(
        GRANTED
            .iter()
            .all(|granted| imports.iter().any(|i| i == granted)),
        "the component must import the contract's types: {imports:?}"
    );
    let unexpected: Vec<&String> = imports
        .iter()
        .filter(|name| !GRANTED.contains(&name.as_str()))
        .filter(|name| !TRAPPED_PREFIXES.iter().any(|p| name.starts_with(p)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected capabilities imported: {unexpected:?}"
    );
    eprintln!("component imports: {imports:#?}");
}
