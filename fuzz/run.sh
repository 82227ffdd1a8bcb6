#!/bin/sh
# Runs one fuzz target for a while, starting from its tracked seeds.
#
#   fuzz/run.sh TARGET [SECONDS]     (default 180 s; TARGET: spec_parse, dataset_read, seqfile_read)
#
# New interesting inputs go to fuzz/corpus/TARGET (ignored by git); crashes to
# fuzz/artifacts/TARGET. Extra libFuzzer flags can follow the seconds, e.g. `-max_len=8192`.
set -eu
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
target=$1
secs=${2:-180}
[ $# -ge 2 ] && shift 2 || shift 1
mkdir -p "$fuzz_dir/corpus/$target" "$fuzz_dir/artifacts/$target"
cp "$fuzz_dir/seeds/$target"/* "$fuzz_dir/corpus/$target/"
cd "$fuzz_dir/.."
# RUSTC_BOOTSTRAP: cargo-fuzz needs nightly-only flags (-Zsanitizer); this lets stable accept them.
# RUSTFLAGS: cargo-fuzz appends it to its own flags; the cfg matches .cargo/config.toml (which
# cargo ignores once RUSTFLAGS is set) so getrandom uses warmstart's deterministic backend.
RUSTC_BOOTSTRAP=1 RUSTFLAGS='--cfg getrandom_backend="custom"' \
    exec cargo fuzz run "$target" "$fuzz_dir/corpus/$target" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 "$@"
