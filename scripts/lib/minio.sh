# Sourced by scripts/test.sh and scripts/bench.sh: builds the pinned MinIO server once and
# sets SSEFS_MINIO_BIN. MinIO is AGPL-3.0: it is a separate binary the tests and
# benchmarks talk to over HTTP, never linked into ssefs.
ssefs_minio_version=v0.0.0-20260212201848-7aac2a2c5b7c

# shellcheck source=goinstall.sh
source "$(dirname "${BASH_SOURCE[0]}")/goinstall.sh"

ssefs_install_minio() {
	local bin
	bin=$(ssefs_go_install minio github.com/minio/minio "$ssefs_minio_version")
	"$bin" --version >/dev/null # proves the cached binary runs
	export SSEFS_MINIO_BIN="$bin"
}
