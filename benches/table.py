#!/usr/bin/env python3
"""Prints the latest `cargo bench --bench merge` results as a Markdown table.

Reads criterion's estimates under target/criterion/{small,medium,large}/*/new/ and shows
the median time per patch of every function and the ratios the performance targets use
(ours in place / B1, ours from bytes / B2, ours immutable / B3, stamped / B1 and
stamped / plain), then the `scaling` group: one 3-trait patch in place on profiles of 10 to
4,750 traits, each with its ratio to the 10-trait profile.
"""
import json
import os
import sys

ROOT = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
SIZES = ["small", "medium", "large"]
FUNCTIONS = [
    "b1_json_patch_in_place", "b2_json_patch_from_bytes", "b3_json_patch_immutable",
    "ours_in_place", "ours_from_bytes", "ours_immutable", "ours_validate", "ours_parse",
    "ours_stamped_in_place", "ours_stamped_read_in_place", "ours_stamped_from_bytes",
]
RATIOS = [("ours_in_place", "b1_json_patch_in_place"),
          ("ours_from_bytes", "b2_json_patch_from_bytes"),
          ("ours_immutable", "b3_json_patch_immutable"),
          ("ours_stamped_in_place", "b1_json_patch_in_place"),
          ("ours_stamped_in_place", "ours_in_place"),
          ("ours_stamped_from_bytes", "ours_from_bytes"),
          ("ours_stamped_read_in_place", "ours_stamped_in_place")]


SCALING = [10, 100, 1000, 4750]


def median_ns(size, function):
    path = os.path.join(ROOT, size, function, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except FileNotFoundError:
        return None


def main():
    medians = {(s, f): median_ns(s, f) for s in SIZES for f in FUNCTIONS}
    if all(v is None for v in medians.values()):
        sys.exit(f"no criterion results under {ROOT}: run `cargo bench --bench merge` first")
    print("| median ns per patch | " + " | ".join(SIZES) + " |")
    print("|---|" + "---|" * len(SIZES))
    for f in FUNCTIONS:
        cells = [f"{medians[(s, f)]:,.0f}" if medians[(s, f)] else "-" for s in SIZES]
        print(f"| `{f}` | " + " | ".join(cells) + " |")
    for ours, base in RATIOS:
        cells = []
        for s in SIZES:
            a, b = medians[(s, ours)], medians[(s, base)]
            cells.append(f"{a / b:.2f}" if a and b else "-")
        label = base if base.startswith("ours") else base.split("_")[0].upper()
        print(f"| {ours} / {label} | " + " | ".join(cells) + " |")
    scaling = {n: median_ns("scaling", os.path.join("ours_in_place", str(n))) for n in SCALING}
    if any(scaling.values()):
        print()
        print("| `scaling/ours_in_place`, traits in the profile | " +
              " | ".join(f"{n:,}" for n in SCALING) + " |")
        print("|---|" + "---|" * len(SCALING))
        print("| median ns per patch | " +
              " | ".join(f"{scaling[n]:,.0f}" if scaling[n] else "-" for n in SCALING) + " |")
        base = scaling[SCALING[0]]
        print(f"| / {SCALING[0]} traits | " +
              " | ".join(f"{scaling[n] / base:.2f}" if scaling[n] and base else "-"
                         for n in SCALING) + " |")


if __name__ == "__main__":
    main()
