#!/usr/bin/env bash
# Installs everything `make demo` and `make test` need on a fresh machine of this kind
# (Debian 12 with Rust, Node 20, Java 17, Maven, Python 3). Idempotent: a second run
# only checks. Any prerequisite that cannot be installed stops here with a clear message;
# nothing downstream turns a missing prerequisite into a skipped test.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
vendor="$here/.prereqs"          # git-ignored; jars and other fetched artefacts
mkdir -p "$vendor"

fail() { echo "prereqs: FAILED: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || fail "must run as root (apt-get, unshare, useradd inside test units)"; }

apt_pkgs=()
command -v musl-gcc >/dev/null || apt_pkgs+=(musl-tools)
[ -x /usr/lib/postgresql/15/bin/postgres ] || apt_pkgs+=(postgresql-15)
command -v zip >/dev/null || apt_pkgs+=(zip)
command -v file >/dev/null || apt_pkgs+=(file)
command -v wrk >/dev/null || apt_pkgs+=(wrk)
command -v unzip >/dev/null || apt_pkgs+=(unzip)
command -v curl >/dev/null || apt_pkgs+=(curl)
command -v unshare >/dev/null || apt_pkgs+=(util-linux)
command -v nsenter >/dev/null || apt_pkgs+=(util-linux)
command -v ip >/dev/null || apt_pkgs+=(iproute2)
command -v systemd-analyze >/dev/null || apt_pkgs+=(systemd)
command -v useradd >/dev/null || apt_pkgs+=(passwd)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  need_root
  echo "prereqs: apt-get install ${apt_pkgs[*]}"
  apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null \
    || fail "apt-get install ${apt_pkgs[*]}"
fi

# Static charm binary: the musl target.
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "prereqs: rustup target add x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl || fail "rustup target add x86_64-unknown-linux-musl"
fi

# A real systemctl that works without systemd as PID 1.
if ! command -v systemctl3.py >/dev/null; then
  echo "prereqs: pip install docker-systemctl-replacement"
  pip install -q "docker-systemctl-replacement==1.7.1097" || fail "pip install docker-systemctl-replacement"
fi
real_systemctl3=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/systemctl3.py
[ -x "$real_systemctl3" ] || fail "systemctl3.py not found at $real_systemctl3 after pip install"
# The `systemctl` simulated units use: only /etc/systemd/system, no SysV scripts, and a clean
# environment (systemd starts services with one; systemctl3.py would pass its caller's on).
mkdir -p "$vendor/bin"
cat > "$vendor/bin/systemctl" <<SHIM
#!/bin/sh
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \\
  SYSTEMD_UNIT_PATH=/etc/systemd/system SYSTEMD_SYSVINIT_PATH= "$real_systemctl3" "\$@"
SHIM
chmod 0755 "$vendor/bin/systemctl"
# The Python that runs systemctl3.py may live under a directory simulated units overlay
# (/root/.pyenv here): jujusim keeps these paths visible inside the units.
python3 -c 'import sys; print(sys.base_prefix)' >"$vendor/keep-paths"

# A MongoDB wire-protocol server: mongo-java-server from Maven Central.
if [ ! -f "$vendor/mongo-java-server/.complete" ]; then
  echo "prereqs: fetching mongo-java-server from Maven Central"
  rm -rf "$vendor/mongo-java-server"
  mvn -q -B -f "$here/tests/mongo-java-server/pom.xml" \
      dependency:copy-dependencies -DoutputDirectory="$vendor/mongo-java-server" \
      || fail "mvn could not fetch de.bwaldvogel:mongo-java-server"
  touch "$vendor/mongo-java-server/.complete"
fi
# The test servers, compiled once (a source launch takes seconds longer at every start).
classes="$vendor/mongo-java-server/classes"
for src in MongoServerMain MongoAuthServerMain; do
  if [ ! -f "$classes/$src.class" ] || [ "$here/tests/mongo-java-server/$src.java" -nt "$classes/$src.class" ]; then
    mkdir -p "$classes"
    javac -d "$classes" -cp "$vendor/mongo-java-server/*" "$here/tests/mongo-java-server/$src.java" \
      || fail "javac $src.java"
  fi
done

# Node must satisfy the pinned parse-server's engines; the charm checks this itself too.
node --version >/dev/null 2>&1 || fail "node is missing (the machine image ships Node 20)"

echo "prereqs: ok"
