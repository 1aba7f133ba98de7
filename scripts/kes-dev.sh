#!/usr/bin/env bash
# A local MinIO KES server for trying ssefs with KES. Not for production: self-signed
# certificates, keys in a plain directory, one machine.
#
# Builds the KES release the tests pin (scripts/kes, the same binary and cache as
# scripts/test.sh and internal/kestest), makes a server certificate and an ssefs client
# identity with `kes identity new`, writes a config whose policy lets ssefs create, use and
# list keys, prints the environment for `ssefs`, and runs KES in the foreground (Ctrl-C stops
# it). Running it again reuses the directory: same certificates, same keys.
#
# Usage: scripts/kes-dev.sh [DIR]          DIR defaults to ./kes-dev
# Env:   KES_DEV_ADDR=127.0.0.1:7373       where KES listens
#        KES_DEV_KEY_NAME=my-key           the key name printed for SSEFS_KMS_KES_KEY_NAME
#        SSEFS_KES_BIN=/path/to/kes        use this KES binary instead of building one
set -euo pipefail

case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-./kes-dev}"
addr="${KES_DEV_ADDR:-127.0.0.1:7373}"
key_name="${KES_DEV_KEY_NAME:-my-key}"
host="${addr%:*}"
port="${addr##*:}"
if [ -z "$host" ] || [ "$host" = "0.0.0.0" ]; then
	host=127.0.0.1
fi

die() {
	echo "kes-dev: $*" >&2
	exit 1
}

# --- the KES binary ------------------------------------------------------------------------
# Same cache as scripts/test.sh and internal/kestest: $(go env GOCACHE)/../ssefs-kes-VERSION,
# else ~/.cache/ssefs/kes-VERSION; the build lock keeps it from racing a test run.
if [ -n "${SSEFS_KES_BIN:-}" ]; then
	kes="$SSEFS_KES_BIN"
	[ -x "$kes" ] || die "SSEFS_KES_BIN=$kes is not an executable file"
else
	command -v go >/dev/null || die "go is not on PATH (needed to build KES; or set SSEFS_KES_BIN)"
	kes_version=$(cd "$repo/scripts/kes" && GOWORK=off go list -m -f '{{.Version}}' github.com/minio/kes)
	kes_cache=$(go env GOCACHE)
	if [ -n "$kes_cache" ] && [ "${kes_cache#/}" != "$kes_cache" ]; then
		kes_cache="$(dirname "$kes_cache")/ssefs-kes-$kes_version"
	else
		kes_cache="${XDG_CACHE_HOME:-$HOME/.cache}/ssefs/kes-$kes_version"
	fi
	kes="$kes_cache/kes"
	mkdir -p "$kes_cache"
	(
		if command -v flock >/dev/null; then
			flock 9
		fi
		if [ ! -x "$kes" ]; then
			echo "kes-dev: building KES $kes_version into $kes (about a minute, once)" >&2
			cd "$repo/scripts/kes"
			GOWORK=off CGO_ENABLED=0 GOFLAGS='-mod=readonly -buildvcs=false' \
				go build -o "$kes.tmp.$$" github.com/minio/kes/cmd/kes
			mv -f "$kes.tmp.$$" "$kes"
		fi
	) 9>"$kes_cache/build.lock"
fi

# --- certificates and identities -----------------------------------------------------------
mkdir -p "$dir"
chmod 700 "$dir"
dir="$(cd "$dir" && pwd)"
umask 077

# new_identity NAME [kes identity new options...]: NAME.key (0600) and NAME.crt, unless they
# exist. `kes identity new` also prints an API key: it is not used here, so it is not shown.
new_identity() {
	local name="$1"
	shift
	if [ -s "$dir/$name.key" ] && [ -s "$dir/$name.crt" ]; then
		return
	fi
	rm -f "$dir/$name.key" "$dir/$name.crt"
	"$kes" identity new --key "$dir/$name.key" --cert "$dir/$name.crt" --expiry 8760h "$@" >/dev/null
	chmod 600 "$dir/$name.key"
}
# The server's certificate (self-signed; ssefs trusts it through SSEFS_KMS_KES_CA_PATH).
new_identity server --ip 127.0.0.1 --ip ::1 --dns localhost localhost
# ssefs' identity, and one for the KES admin (the kes CLI).
new_identity ssefs ssefs
new_identity admin kes-admin
ssefs_id=$("$kes" identity of "$dir/ssefs.crt")
admin_id=$("$kes" identity of "$dir/admin.crt")

# --- config ---------------------------------------------------------------------------------
mkdir -p "$dir/keystore"
cat >"$dir/config.yml" <<EOF
# Written by scripts/kes-dev.sh: a KES for trying ssefs out, not for production.
version: v1
address: "$addr"

admin:
  identity: $admin_id

tls:
  key: "$dir/server.key"
  cert: "$dir/server.crt"
  # auth off: KES accepts any client certificate in the handshake and knows a client by
  # its identity (the hash of its public key), as the policy below lists it.
  auth: "off"

cache:
  expiry:
    any: 5m
    unused: 30s

log:
  error: "on"
  audit: "off"

policy:
  ssefs:
    allow:
    - /v1/key/create/*
    - /v1/key/generate/*
    - /v1/key/decrypt/*
    - /v1/key/list/*
    - /v1/status
    identities:
    - $ssefs_id

keystore:
  fs:
    path: "$dir/keystore"
EOF

cat >"$dir/ssefs.env" <<EOF
export SSEFS_KMS_KES_ENDPOINT=https://$host:$port
export SSEFS_KMS_KES_KEY_FILE=$dir/ssefs.key
export SSEFS_KMS_KES_CERT_FILE=$dir/ssefs.crt
export SSEFS_KMS_KES_CA_PATH=$dir/server.crt
export SSEFS_KMS_KES_KEY_NAME=$key_name
EOF

cat <<EOF
KES for trying ssefs out: https://$host:$port, files in $dir
  ssefs' identity: $ssefs_id (policy "ssefs": create, generate, decrypt, list keys)

In another shell, set ssefs up for it (the same lines are in $dir/ssefs.env):

$(cat "$dir/ssefs.env")

Create the key ssefs seals with, once, then mount:

  ssefs key create $key_name
  ssefs key status $key_name
  mkdir -p /mnt/ssefs && ssefs mount /mnt/ssefs

KES's own CLI, as its admin:
  MINIO_KES_SERVER=https://$host:$port MINIO_KES_KEY_FILE=$dir/admin.key MINIO_KES_CERT_FILE=$dir/admin.crt $kes key ls -k

Starting KES (Ctrl-C stops it; keys stay in $dir/keystore):
EOF
exec "$kes" server --config "$dir/config.yml"
