#!/usr/bin/env bash
# Instructions per operation, counted by callgrind: repeatable on a shared, noisy machine,
# where `cargo bench` times are not. Counts only what runs inside `measured` of
# examples/icount.rs (the operation, not its setup), averaged over REPEAT runs.
#
#   benches/icount.sh [SIZE...]            # default: small medium large
#
# Needs valgrind (`apt-get install -y valgrind`). CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 1; }
REPEAT=${REPEAT:-20}
OPERATIONS=(b1_json_patch_in_place b2_json_patch_from_bytes b3_json_patch_immutable
  ours_in_place ours_from_bytes ours_immutable ours_stamped_in_place ours_stamped_from_bytes
  ours_stamped_read_in_place)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(small medium large)

cargo build --release --quiet --example icount
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
binary="$target_dir/release/examples/icount"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

printf '| instructions per operation | %s |\n|---|%s\n' "$(IFS='|'; echo "${sizes[*]}" | sed 's/|/ | /g')" "$(printf -- '---|%.0s' "${sizes[@]}")"
for operation in "${OPERATIONS[@]}"; do
  row="| \`$operation\` |"
  for size in "${sizes[@]}"; do
    valgrind --tool=callgrind --toggle-collect='*icount*measured*' \
      --callgrind-out-file="$out/$operation.$size" "$binary" "$operation" "$size" "$REPEAT" 2>/dev/null
    total=$(grep -E '^(summary|totals):' "$out/$operation.$size" | head -1 | awk '{print $2}')
    row="$row $((total / REPEAT)) |"
  done
  echo "$row"
done
