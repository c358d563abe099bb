#!/usr/bin/env bash
# `make e2e`: the end-to-end tests (booted simulated units), wrapped in a check that the host
# is as it was: a snapshot before, one after, and the target fails naming what changed.
# Then a summary of the figures the tests measured (target/e2e/figures.log).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
mkdir -p target/e2e
figures=target/e2e/figures.log
before=target/e2e/host-before.txt
after=target/e2e/host-after.txt

# What a simulated unit must never change on the host, one "what: value" line each.
snapshot() {
  local k f p
  for k in fs.protected_regular fs.protected_fifos fs.protected_hardlinks fs.protected_symlinks \
           kernel.hostname kernel.domainname net.ipv4.ip_forward; do
    echo "sysctl $k: $(cat "/proc/sys/${k//.//}")"
  done
  for f in /etc/passwd /etc/group /etc/shadow /etc/gshadow; do
    echo "account file $f: $(sha256sum "$f" | cut -d' ' -f1)"
  done
  sort /proc/self/mounts | sed 's/^/host mount: /'
  ls /sys/class/net | sed 's/^/host network interface: /'
  find /etc/systemd/system -printf 'host unit file: %P -> %l\n' | sort
  # TCP listeners in the host's network namespace opened by processes of this repository
  # (cwd or command line in it); on a shared host other work may open its own meanwhile.
  ss -Htlnp 2>/dev/null | while read -r _ _ _ addr _ users; do
    for p in $(grep -o 'pid=[0-9]*' <<<"$users" | cut -d= -f2); do
      cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-200)
      cwd=$(readlink "/proc/$p/cwd" 2>/dev/null)
      case "$cwd/ $cmd" in
        "$repo"/*|*" $repo"/*|*"$repo/"*) echo "host TCP listener: $addr ($cmd)" ;;
      esac
    done
  done | sort -u
  # systemd processes booted for units of this repository (their parent is the unshare of
  # `jujusim machine-boot <unit dir>`), and the cgroups the units' boot records name.
  for p in $(pgrep -x systemd); do
    parent=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)
    booted_by=$(tr '\0' ' ' <"/proc/$parent/cmdline" 2>/dev/null)
    case "$booted_by" in
      *"$repo/"*) echo "systemd process of a test unit: $p (booted by: $booted_by)" ;;
    esac
  done
  for rec in "$repo"/target/e2e/*/machine-run.json; do
    [ -f "$rec" ] || continue
    cg=$(sed -n 's/^ *"cgroup": "\(.*\)",$/\1/p' "$rec")
    [ -n "$cg" ] && [ -d "$cg" ] && echo "unit cgroup left: $cg (unit $(dirname "$rec"))"
  done
  # Anything still running from this repository's test units (a server a test leaked).
  for p in $(pgrep -f "$repo/target/e2e/"); do
    [ "$p" = $$ ] && continue
    echo "process of a test unit: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-200)"
  done
}

snapshot >"$before"
rm -f "$figures"
cargo test --test e2e -- --test-threads=2
rc=$?
snapshot >"$after"

changed=$(diff "$before" "$after" | grep '^[<>]' || true)
if [ -n "$changed" ]; then
  echo
  echo "e2e: FAILED: the host changed during the end-to-end tests (< before, > after):"
  echo "$changed"
  rc=1
fi

if [ -s "$figures" ]; then
  echo
  echo "e2e figures:"
  awk -F'\t' '
    $1 == "boot" { b[++n] = $3 }
    $1 != "boot" { printf "  %s: %s: %s %s\n", $1, $2, $3, $4 }
    END {
      if (n) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
        med = (n % 2) ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
        printf "  boot (machine-up to multi-user.target, %d boots): median %.0f ms, range %.0f-%.0f ms\n", n, med, b[1], b[n]
      }
    }' "$figures"
fi
exit $rc
