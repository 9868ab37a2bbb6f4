#!/bin/sh
# Writes empty targets for every workspace member whose Cargo.toml is present, so that
# `cargo build` can compile the dependencies alone. The Dockerfile runs this in the
# dependency layer, which is then rebuilt only when a Cargo.toml or Cargo.lock changes.
# tests/deploy.rs runs it too and checks that cargo loads the result with the same lock.
set -eu
mkdir -p src
: > src/lib.rs
echo 'fn main() {}' > src/main.rs
for manifest in functions/*/Cargo.toml; do
    dir=${manifest%/Cargo.toml}
    mkdir -p "$dir/src"
    echo 'fn main() {}' > "$dir/src/main.rs"
done
