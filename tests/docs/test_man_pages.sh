#!/usr/bin/env bash
# The man pages (man/) render without warnings (mandoc -T lint, man --warnings) and agree with the
# programs: every option a program's --help prints is in its man page, and every option the man
# page lists (its .It lines) is one the program has. A program that gains an option fails here
# until its page has it. To add a program or a subcommand, extend PAGES or SUBCOMMAND_HELP below.
# Usage: test_man_pages.sh BUILD_DIR (no root needed).
set -euo pipefail
BUILD=$(cd "${1:?usage: test_man_pages.sh BUILD_DIR}" && pwd)
TOP=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$TOP/man
failures=0
fail() { printf '[test_man_pages] FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }

# page: the programs whose --help it documents (paths in the build tree).
declare -A PAGES=(
  [vlunfs.8]="vlunfs"
  [mkfs.vlunfs.8]="mkfs.vlunfs"
  [fsck.vlunfs.8]="fsck.vlunfs"
  [vlunctl.8]="vlunctl"
  [mount.vlunfs.8]="mount.vlunfs umount.fuse.vlunfs"
)

# help_options TEXT: the options of a --help text, one a line: -x, --long, or -o NAME for a
# FUSE-style -o option. Only lines that start with an option count, and only their first column
# (up to two spaces), so a description that mentions another option is not taken for one.
help_options() {
  { grep -E '^ +-' || true; } | sed -E 's/^ +//; s/  .*//; s/ (Excludes|Needs): .*//' | while read -r column; do
    if [[ $column =~ ^-o\ +([a-z_]+) ]]; then
      echo "-o ${BASH_REMATCH[1]}"
    else
      { grep -oE -- '(^|[ ,])--?[A-Za-z][A-Za-z0-9_-]*' <<<"$column" || true; } | sed -E 's/^[ ,]//'
    fi
  done
}

# man_options PAGE: the options a page's .It lines list: ".It Fl s , Fl -size" gives -s and
# --size, ".It Fl o Cm ro" gives "-o ro".
man_options() {
  { grep -E '^\.It .*Fl ' "$1" || true; } | while read -r line; do
    if [[ $line =~ Fl\ o\ Cm\ ([a-z_]+) ]]; then
      echo "-o ${BASH_REMATCH[1]}"
      continue
    fi
    { grep -oE 'Fl [A-Za-z-][A-Za-z0-9_-]*' <<<"$line" || true; } | sed -E 's/^Fl /-/'
  done
}

# The subcommands of a CLI11 program (its "Subcommands:" section).
subcommands() { awk '/^Subcommands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}'; }

for page in "${!PAGES[@]}"; do
  [ -f "$MAN/$page" ] || { fail "$page is missing"; continue; }
  # Warnings and errors only: mandoc's STYLE notes (long source lines, manuals not installed
  # here) are not defects of the page.
  if ! lint=$(mandoc -T lint -W warning "$MAN/$page" 2>&1); then fail "mandoc -T lint $page: $lint"; fi
  warnings=$(man --warnings -l -Tutf8 "$MAN/$page" 2>&1 >/dev/null) || true
  [ -z "$warnings" ] || fail "man --warnings $page: $warnings"

  help_text=""
  for prog in ${PAGES[$page]}; do
    [ -x "$BUILD/$prog" ] || { fail "$BUILD/$prog is not built"; continue; }
    out=$("$BUILD/$prog" --help) || fail "$prog --help exited $?"
    help_text+=$out$'\n'
    for sub in $(subcommands <<<"$out"); do
      sub_out=$("$BUILD/$prog" "$sub" --help) || fail "$prog $sub --help exited $?"
      help_text+=$sub_out$'\n'
      grep -qE "^\.It Cm $sub( |\$)" "$MAN/$page" || fail "$page has no entry for the subcommand '$sub' ($prog --help lists it)"
    done
    if [ "$prog" = vlunctl ]; then
      for sub in $({ grep -oE '^\.It Cm [a-z]+' "$MAN/$page" || true; } | awk '{print $3}'); do
        subcommands <<<"$out" | grep -qx "$sub" || fail "$page documents the subcommand '$sub', which $prog --help does not list"
      done
    fi
  done
  from_help=$(help_options <<<"$help_text" | sort -u)
  from_man=$(man_options "$MAN/$page" | sort -u)
  missing=$(comm -23 <(echo "$from_help") <(echo "$from_man") | paste -sd' ')
  extra=$(comm -13 <(echo "$from_help") <(echo "$from_man") | paste -sd' ')
  [ -z "$missing" ] || fail "$page lacks options that ${PAGES[$page]} --help prints: $missing"
  [ -z "$extra" ] || fail "$page lists options that ${PAGES[$page]} --help does not print: $extra"
done

# vlunfs(5) has no program; it must still render cleanly.
lint=$(mandoc -T lint -W warning "$MAN/vlunfs.5" 2>&1) || fail "mandoc -T lint vlunfs.5: $lint"

if [ "$failures" -ne 0 ]; then
  echo "[test_man_pages] FAILED ($failures)" >&2
  exit 1
fi
echo "[test_man_pages] PASS"
