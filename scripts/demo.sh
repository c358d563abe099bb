#!/usr/bin/env bash
# `make demo`: the packed charm deployed on a simulated local unit (a machine booting this
# host's own systemd as PID 1 of its own namespaces) with an embedded MongoDB-compatible database
# (mongo-java-server), related, serving real requests; then torn down. DEMO_KEEP=1 leaves the
# unit up to try the printed commands.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
charm=${1:?usage: demo.sh path/to/parse-server_amd64.charm}
cargo build --quiet -p jujusim --manifest-path "$repo/Cargo.toml"
sim="$repo/target/debug/jujusim"
unit="$repo/.demo/unit-0"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
mongo_pid=
proxy_pid=
teardown() {
  rm -f "$unit/headers" "$unit/.key"   # they hold the master key
  [ -n "$mongo_pid" ] && kill "$mongo_pid" 2>/dev/null || true
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  "$sim" machine-down "$unit" >/dev/null 2>&1 || true
}
[ -d "$unit" ] && "$sim" machine-down "$unit" >/dev/null 2>&1 || true
rm -rf "$unit"; mkdir -p "$unit"
if [ "${DEMO_KEEP:-0}" != 1 ]; then trap teardown EXIT; fi

say "A simulated machine for parse-server/0 (it boots systemd), and the charm unpacked on it"
machine_pid=$("$sim" machine-up "$unit")
"$sim" deploy-charm "$unit" "$charm"

say "The model's juju-https-proxy: the unit's only way out, to the npm registry alone"
"$repo/target/debug/egress-proxy" --netns-pid "$machine_pid" --listen 127.0.0.1:3128 \
  --allow registry.npmjs.org:443 >"$unit/egress-proxy.log" 2>&1 &
proxy_pid=$!
export JUJUSIM_HTTPS_PROXY=http://127.0.0.1:3128

say "An embedded MongoDB-compatible database on the unit's network (mongo-java-server)"
"$sim" machine-exec --net-only "$unit" -- java -Xmx256m -cp "$repo/.prereqs/mongo-java-server/*" \
  "$repo/tests/mongo-java-server/MongoServerMain.java" 127.0.0.1 27017 >"$unit/mongo.log" 2>&1 &
mongo_pid=$!
for _ in $(seq 1 120); do
  "$sim" machine-exec "$unit" -- bash -c 'exec 3<>/dev/tcp/127.0.0.1/27017' 2>/dev/null && break
  sleep 0.5
done

say "juju deploy ./parse-server_amd64.charm   (install, leader-elected, config-changed, start)"
t0=$(date +%s.%N)
"$sim" deploy "$unit"
"$sim" status "$unit"

say "juju config parse-server app-id=shop"
"$sim" config "$unit" app-id=shop
"$sim" hook "$unit" config-changed

say "juju integrate parse-server mongodb"
"$sim" integrate "$unit" mongodb mongodb mongodb/0 hostname=127.0.0.1 port=27017 >/dev/null
t1=$(date +%s.%N)
"$sim" status "$unit"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "deploy to serving: %.1f s\n", b - a }'

say "juju run parse-server/0 get-master-key"
"$sim" action "$unit" get-master-key
# Headers go in a root-only file so the key never appears on a command line or in this output.
"$sim" secret-reveal "$unit" master-key --key master-key >"$unit/.key"
{ printf 'X-Parse-Application-Id: shop\nX-Parse-Master-Key: '; cat "$unit/.key"; printf '\nContent-Type: application/json\n'; } >"$unit/headers"
chmod 600 "$unit/headers" "$unit/.key"

run() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; echo; }
base=http://127.0.0.1:1337/parse
in_unit=("$sim" machine-exec "$unit" --)
say "Real requests through the opened port"
run "${in_unit[@]}" curl -s "$base/health"
created=$("${in_unit[@]}" curl -s -X POST -H "@$unit/headers" -d '{"score":1337,"player":"Sean"}' "$base/classes/GameScore")
printf '$ curl -X POST -H @headers -d %s %s\n%s\n\n' "'{\"score\":1337,\"player\":\"Sean\"}'" "$base/classes/GameScore" "$created"
id=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["objectId"])')
run "${in_unit[@]}" curl -s -H "@$unit/headers" "$base/classes/GameScore/$id"
run "${in_unit[@]}" curl -s -G -H "@$unit/headers" --data-urlencode 'where={"score":{"$gt":1000}}' --data-urlencode count=1 "$base/classes/GameScore"

say "juju attach-resource parse-server cloud-code=./cloud.tar.gz   (the app's Cloud Code, with its npm dependency)"
tar czf "$unit/cloud.tar.gz" -C "$repo/tests/fixtures/cloud-code" .
"$sim" attach-resource "$unit" cloud-code "$unit/cloud.tar.gz"
"$sim" upgrade "$unit"
"$sim" status "$unit"
run "${in_unit[@]}" curl -s -X POST -H "@$unit/headers" -d '{"text":"2h"}' "$base/functions/duration"
run "${in_unit[@]}" curl -s -X POST -H "@$unit/headers" -d '{"item":"book"}' "$base/classes/Order"
run "${in_unit[@]}" curl -s -G -H "@$unit/headers" --data-urlencode 'keys=item,status' "$base/classes/Order"

if [ "${DEMO_KEEP:-0}" = 1 ]; then
  say "The unit stays up (DEMO_KEEP=1). Try:"
  echo "  $sim machine-exec $unit -- curl -s -H @$unit/headers $base/classes/GameScore"
  echo "  $sim status $unit"
  echo "Tear down: $sim teardown $unit && $sim machine-down $unit; kill $mongo_pid $proxy_pid"
else
  say "juju remove-application parse-server   (relations departed/broken, stop, remove)"
  "$sim" teardown "$unit"
  "$sim" status "$unit"
fi
