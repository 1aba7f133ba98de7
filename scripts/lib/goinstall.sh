# Sourced by scripts/test.sh and scripts/bench.sh: pinned Go tools, each built once into a
# cache directory keyed by its version (a second run reuses it), beside Go's build cache.

# ssefs_go_install NAME MODULE VERSION: prints the path of NAME built from MODULE@VERSION.
ssefs_go_install() {
	local name=$1 module=$2 version=$3 cache
	cache=$(go env GOCACHE)
	if [ -n "$cache" ] && [ "${cache#/}" != "$cache" ]; then
		cache="$(dirname "$cache")/ssefs-$name-$version"
	else
		cache="${XDG_CACHE_HOME:-$HOME/.cache}/ssefs/$name-$version"
	fi
	echo "$name $version -> $cache/$name" >&2
	if [ ! -x "$cache/$name" ]; then
		mkdir -p "$cache"
		rm -rf "$cache/bin.tmp.$$"
		GOWORK=off CGO_ENABLED=0 GOFLAGS='-buildvcs=false' GOBIN="$cache/bin.tmp.$$" \
			go install "$module@$version" >&2
		mv -f "$cache/bin.tmp.$$/$name" "$cache/$name"
		rmdir "$cache/bin.tmp.$$"
	fi
	echo "$cache/$name"
}
