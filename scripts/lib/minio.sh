# Sourced by scripts/test.sh and scripts/bench.sh: builds the pinned MinIO server once into a
# cache directory keyed by its version (a second run reuses it) and sets SSEFS_MINIO_BIN.
# MinIO is AGPL-3.0: it is a separate binary the tests and benchmarks talk to over HTTP,
# never linked into ssefs.
ssefs_minio_version=v0.0.0-20260212201848-7aac2a2c5b7c

ssefs_install_minio() {
	local cache
	cache=$(go env GOCACHE)
	if [ -n "$cache" ] && [ "${cache#/}" != "$cache" ]; then
		cache="$(dirname "$cache")/ssefs-minio-$ssefs_minio_version"
	else
		cache="${XDG_CACHE_HOME:-$HOME/.cache}/ssefs/minio-$ssefs_minio_version"
	fi
	echo "minio $ssefs_minio_version -> $cache/minio"
	if [ ! -x "$cache/minio" ]; then
		mkdir -p "$cache"
		rm -rf "$cache/bin.tmp.$$"
		GOWORK=off CGO_ENABLED=0 GOFLAGS='-buildvcs=false' GOBIN="$cache/bin.tmp.$$" \
			go install "github.com/minio/minio@$ssefs_minio_version"
		mv -f "$cache/bin.tmp.$$/minio" "$cache/minio"
		rmdir "$cache/bin.tmp.$$"
	fi
	"$cache/minio" --version >/dev/null # proves the cached binary runs
	export SSEFS_MINIO_BIN="$cache/minio"
}
