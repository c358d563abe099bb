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
command -v strace >/dev/null || apt_pkgs+=(strace)   # the e2e tests count what a hook starts
command -v haproxy >/dev/null || apt_pkgs+=(haproxy)
command -v unzip >/dev/null || apt_pkgs+=(unzip)
command -v curl >/dev/null || apt_pkgs+=(curl)
command -v openssl >/dev/null || apt_pkgs+=(openssl)   # the e2e tests' TLS fixtures (CAs, certificates, s_client)
command -v unshare >/dev/null || apt_pkgs+=(util-linux)
command -v nsenter >/dev/null || apt_pkgs+=(util-linux)
command -v ip >/dev/null || apt_pkgs+=(iproute2)
command -v systemd-analyze >/dev/null || apt_pkgs+=(systemd)
[ -x /lib/systemd/systemd ] || apt_pkgs+=(systemd)   # simulated units boot it as their PID 1
command -v setpriv >/dev/null || apt_pkgs+=(util-linux)
command -v ss >/dev/null || apt_pkgs+=(iproute2)
command -v pg_createcluster >/dev/null || apt_pkgs+=(postgresql-common)
command -v useradd >/dev/null || apt_pkgs+=(passwd)
# The benchmark's ops charm runs on the units' python3 (the host's, /usr/bin/python3) and its
# dependencies are installed with that interpreter's pip.
[ -x /usr/bin/python3 ] || apt_pkgs+=(python3)
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || apt_pkgs+=(python3-pip)
# The email test's SMTP server (AUTH, STARTTLS) on the model network.
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || apt_pkgs+=(python3-aiosmtpd)
# The redis test's server (AUTH, its own port and directory on the model network) and
# redis-cli to look into it. The package's own service is never used: see below.
command -v redis-server >/dev/null || apt_pkgs+=(redis-server)
command -v redis-cli >/dev/null || apt_pkgs+=(redis-tools)
# The browser tests' headless browser (Parse Dashboard): Debian's Chromium, driven by
# puppeteer-core (tests/browser), which never downloads a browser of its own; Liberation
# fonts so pages render text. Installed without recommends (no desktop stack).
browser_pkgs=()
command -v chromium >/dev/null || browser_pkgs+=(chromium)
[ -d /usr/share/fonts/truetype/liberation ] || browser_pkgs+=(fonts-liberation)
if [ ${#apt_pkgs[@]} -gt 0 ] || [ ${#browser_pkgs[@]} -gt 0 ]; then
  need_root
  echo "prereqs: apt-get install ${apt_pkgs[*]} ${browser_pkgs[*]}"
  apt-get update -qq || fail "apt-get update"
  # Packages with a service (postgresql, haproxy, redis-server) must not start it on the
  # host: the tests start their own servers inside simulated units and networks.
  policy=/usr/sbin/policy-rc.d
  had_policy=0; [ -e "$policy" ] && had_policy=1
  [ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 0755 "$policy"; }
  rc=0 what=""
  if [ ${#apt_pkgs[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null \
      || { rc=$?; what="${apt_pkgs[*]}"; }
  fi
  if [ "$rc" = 0 ] && [ ${#browser_pkgs[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${browser_pkgs[@]}" >/dev/null \
      || { rc=$?; what="--no-install-recommends ${browser_pkgs[*]}"; }
  fi
  [ "$had_policy" = 1 ] || rm -f "$policy"
  [ "$rc" = 0 ] || fail "apt-get install $what"
fi

/usr/bin/python3 -c 'import aiosmtpd.controller, aiosmtpd.smtp' \
    || fail "python3-aiosmtpd is installed but python3 cannot import aiosmtpd"
/usr/bin/redis-server --version >/dev/null 2>&1 \
    || fail "redis-server is installed but /usr/bin/redis-server --version fails"
command -v redis-cli >/dev/null || fail "redis-cli is missing (Debian's redis-tools)"
# The packaged redis-server.service is left disabled: the tests start their own server
# (their own config, port, password and directory), and simulated units mask whatever the
# host enables anyway. Disabling is a file operation; it needs no running systemd.
if [ -e /etc/systemd/system/multi-user.target.wants/redis-server.service ]; then
  need_root
  systemctl --no-reload disable redis-server.service >/dev/null 2>&1 \
    || rm -f /etc/systemd/system/multi-user.target.wants/redis-server.service
fi

# Static charm binary: the musl target.
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "prereqs: rustup target add x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl || fail "rustup target add x86_64-unknown-linux-musl"
fi

# Simulated units run the host's own systemd and systemctl; what earlier versions of this
# script installed for a machine without systemd goes.
rm -f "$vendor/bin/systemctl" "$vendor/keep-paths"
rmdir "$vendor/bin" 2>/dev/null || true

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

# A real S3 server for the files tests: SeaweedFS, built from the Go module proxy once per
# machine. `go install` refuses its module (its go.mod has a replace directive), so the
# module is downloaded, copied somewhere writable and `weed` built there (several minutes).
weed_version="v0.0.0-20261109003541-7506e5f91cd6"
weed_dir="$vendor/seaweedfs"
if [ "$(cat "$weed_dir/.version" 2>/dev/null)" != "$weed_version" ] || [ ! -x "$weed_dir/weed" ]; then
  command -v go >/dev/null || fail "go is missing (SeaweedFS, the tests' S3 server, is built with it)"
  echo "prereqs: building SeaweedFS $weed_version (the tests' S3 server) from the Go module proxy"
  rm -rf "$weed_dir" && mkdir -p "$weed_dir"
  mod_dir=$(go mod download -json "github.com/seaweedfs/seaweedfs@$weed_version" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') \
      || fail "go mod download github.com/seaweedfs/seaweedfs@$weed_version"
  cp -r "$mod_dir" "$weed_dir/src" && chmod -R u+w "$weed_dir/src"
  (cd "$weed_dir/src" && go build -trimpath -ldflags="-s -w" -o "$weed_dir/weed" ./weed) \
      || fail "go build ./weed (SeaweedFS $weed_version)"
  rm -rf "$weed_dir/src"
  echo "$weed_version" > "$weed_dir/.version"
fi
"$weed_dir/weed" version >/dev/null 2>&1 || fail "$weed_dir/weed does not run"

# The benchmark's ops charm (benches/ops-charm): its pinned dependencies from PyPI into the
# venv/ its packed charm ships (charmcraft's layout: pip --target, dispatch puts venv on
# PYTHONPATH), installed with the units' own python3. Rebuilt when requirements.txt changes.
ops_req="$here/benches/ops-charm/requirements.txt"
ops_venv="$vendor/ops-charm-venv"
ops_stamp="$ops_venv/.requirements"
if ! cmp -s "$ops_req" "$ops_stamp" 2>/dev/null; then
  echo "prereqs: pip install the ops charm's dependencies (ops, pg8000) from PyPI"
  rm -rf "$ops_venv"
  /usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
      --target "$ops_venv" --requirement "$ops_req" \
      || fail "pip install -r benches/ops-charm/requirements.txt (the benchmark's ops charm)"
  /usr/bin/python3 -c "import sys; sys.path.insert(0, '$ops_venv'); import ops, pg8000; assert ops.__version__ == '3.9.0', ops.__version__" \
      || fail "the ops charm's venv does not import ops 3.9.0 and pg8000"
  cp "$ops_req" "$ops_stamp"
fi

# The browser tests' driver (tests/browser): puppeteer-core from its lockfile, with the
# browser download off (it drives Debian's Chromium). Reinstalled when the lockfile changes.
chromium --headless=new --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1 \
    || fail "chromium is installed but does not start headless (chromium --headless=new --dump-dom about:blank)"
browser="$here/tests/browser"
if ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.package-lock.json.installed" 2>/dev/null \
   || [ ! -f "$browser/node_modules/puppeteer-core/package.json" ]; then
  echo "prereqs: npm ci in tests/browser (puppeteer-core, no browser download)"
  (cd "$browser" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
      || fail "npm ci in tests/browser (puppeteer-core for the browser tests)"
  cp "$browser/package-lock.json" "$browser/node_modules/.package-lock.json.installed"
fi
node -e 'require(process.argv[1])' "$browser/node_modules/puppeteer-core" \
    || fail "tests/browser/node_modules/puppeteer-core does not load in this node"

# Node must satisfy the pinned parse-server's engines; the charm checks this itself too.
node --version >/dev/null 2>&1 || fail "node is missing (the machine image ships Node 20)"

echo "prereqs: ok"
