#!/usr/bin/env bash
# Sequential throughput through an ssefs mount with the chunk objects on the local disk
# (DATA/objects) and in an S3 bucket (--store s3://BUCKET/PREFIX on a MinIO server on
# loopback), measured in one run (issue #7), as root:
#
#   seq write   fio writes one file with 1 MiB writes, end_fsync=1 (the time to make it
#               durable counts: ssefs' write-back buffer is not flattered);
#   seq read    the same file read with 1 MiB reads, cold: ssefs is unmounted and mounted
#               again (its decrypted-package cache and Badger's caches are in its own
#               memory) and the kernel's caches are dropped (echo 3 > drop_caches).
#
# The two stores alternate within every round (local first in odd rounds, S3 first in even
# ones) so that the machine's noise hits both alike; every round starts from a fresh data
# directory and a fresh bucket prefix. MinIO runs for the whole run (single drive, on the
# same disk as the local store, so both stores write to the same device). The table gives
# the median of the rounds, each round's figures, and the CPU seconds that ssefs and MinIO
# spent per GiB, which tell a CPU-bound phase from one that waits on requests.
#
# Usage: scripts/bench_store.sh [flags]
#   --rounds N       rounds (default 3; 1 with --quick unless given)
#   --size-mib N     size of the file (default 1024; 256 with --quick unless given)
#   --quick          development run: 1 round of 256 MiB
#   --profile        also take a CPU profile of ssefs during each write and read (the
#                    first --profile-secs of the phase) and its block profile after it, through
#                    SSEFS_DEBUG_PPROF, into raw/; `go tool pprof -top FILE` reads them
#   --profile-secs N length of those CPU profiles (default 5)
#   --stores LIST    which stores, comma-separated: local,s3 (default both)
#   --mount-flag F   one more flag for `ssefs mount` (repeatable), e.g. --mount-flag=--debug
#                    (the FUSE requests go to logs/) or --mount-flag=--store-max-requests=32
#   --ssefs-env N=V  one more environment variable for the ssefs mount only (repeatable), e.g.
#                    --ssefs-env GOMAXPROCS=4 (the engine runs 2 x GOMAXPROCS chunk sealers)
#   --read-ahead-kb N set the mount's kernel readahead (/sys/class/bdi/DEV/read_ahead_kb) to N
#                    KiB after each mount; the kernel starts FUSE mounts at 128
#   --ssefs-bin FILE measure this ssefs binary instead of building one from the tree
#   --workdir DIR    where data directories, MinIO's drive and mountpoints live, on the disk
#                    to measure (default $SSEFS_BENCH_WORKDIR, else /var/tmp/ssefs-bench); a
#                    run uses DIR/store.PID and removes it at the end
#   --results DIR    results root (default $SSEFS_BENCH_RESULTS, else bench-results/ in the
#                    repository); a run writes DIR/<UTC timestamp>-store/
#   --keep           keep the work directory at the end, for a post-mortem
#   -h, --help       this text
#
# Output: the table on stdout, and in the results directory table.md (the same), raw.csv
# (every figure of every round), raw/ (fio JSON, profiles), logs/ (stderr of every mount and
# of MinIO), meta.txt (machine, versions, load) and bench.log (this run's output).
#
# It needs fio (Debian's: apt-get install fio) and python3, builds ssefs into the work
# directory and MinIO through scripts/lib/minio.sh (cached beside the Go build cache after
# the first build). Every mount and process it starts is stopped on exit, also on Ctrl-C and
# on failure. A default run (3 rounds of 1 GiB) takes about 2 minutes on 2 cores.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me="scripts/bench_store.sh"
export LC_ALL=C
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$repo/scripts/lib/bench.sh"

# --- flags -----------------------------------------------------------------------------------
quick=0
rounds=""
size_mib=""
profile=0
profile_secs=5
stores_arg=local,s3
mount_flags=()
ssefs_env=()
ssefs_bin=""
read_ahead_kb=""
workroot=${SSEFS_BENCH_WORKDIR:-/var/tmp/ssefs-bench}
results_root=${SSEFS_BENCH_RESULTS:-$repo/bench-results}
keep=0
while [ "$#" -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--rounds) need_arg "$@"; rounds=$2; shift ;;
	--rounds=*) rounds=${1#*=} ;;
	--size-mib) need_arg "$@"; size_mib=$2; shift ;;
	--size-mib=*) size_mib=${1#*=} ;;
	--profile) profile=1 ;;
	--profile-secs) need_arg "$@"; profile_secs=$2; shift ;;
	--profile-secs=*) profile_secs=${1#*=} ;;
	--stores) need_arg "$@"; stores_arg=$2; shift ;;
	--stores=*) stores_arg=${1#*=} ;;
	--mount-flag) need_arg "$@"; mount_flags+=("$2"); shift ;;
	--mount-flag=*) mount_flags+=("${1#*=}") ;;
	--ssefs-env) need_arg "$@"; ssefs_env+=("$2"); shift ;;
	--ssefs-env=*) ssefs_env+=("${1#*=}") ;;
	--read-ahead-kb) need_arg "$@"; read_ahead_kb=$2; shift ;;
	--read-ahead-kb=*) read_ahead_kb=${1#*=} ;;
	--ssefs-bin) need_arg "$@"; ssefs_bin=$2; shift ;;
	--ssefs-bin=*) ssefs_bin=${1#*=} ;;
	--workdir) need_arg "$@"; workroot=$2; shift ;;
	--workdir=*) workroot=${1#*=} ;;
	--results) need_arg "$@"; results_root=$2; shift ;;
	--results=*) results_root=${1#*=} ;;
	--keep) keep=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$me: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$rounds" ] || { [ "$quick" = 1 ] && rounds=1 || rounds=3; }
[ -n "$size_mib" ] || { [ "$quick" = 1 ] && size_mib=256 || size_mib=1024; }
positive() {
	case "$2" in '' | *[!0-9]* | 0*) echo "$me: $1 must be a positive number, got '$2'" >&2; exit 2 ;; esac
}
positive --rounds "$rounds"
positive --size-mib "$size_mib"
positive --profile-secs "$profile_secs"
[ -z "$read_ahead_kb" ] || positive --read-ahead-kb "$read_ahead_kb"
IFS=, read -r -a stores <<<"$stores_arg"
[ ${#stores[@]} -gt 0 ] || { echo "$me: --stores needs local, s3 or both" >&2; exit 2; }
for s in "${stores[@]}"; do
	case "$s" in local | s3) ;; *) echo "$me: unknown store '$s' in --stores (known: local, s3)" >&2; exit 2 ;; esac
done
for v in "${ssefs_env[@]}"; do
	case "$v" in [A-Za-z_]*=*) ;; *) echo "$me: --ssefs-env wants NAME=VALUE, got '$v'" >&2; exit 2 ;; esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (it mounts FUSE file systems and drops the page cache): sudo $me"
[ -e /dev/fuse ] || die "/dev/fuse is missing: FUSE is not available here"
command -v fio >/dev/null || die "fio is missing: apt-get install fio"
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || die "python3 is missing: apt-get install python3"
command -v curl >/dev/null || die "curl is missing: apt-get install curl"
if [ -n "$ssefs_bin" ]; then
	[ -x "$ssefs_bin" ] || die "--ssefs-bin $ssefs_bin is not an executable file"
	ssefs_bin=$(cd "$(dirname "$ssefs_bin")" && pwd)/$(basename "$ssefs_bin")
fi

# --- output and work directories ----------------------------------------------------------------
bench_setup -store store store
trap 'bench_cleanup 20' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- builds ----------------------------------------------------------------------------------------
bin="$run/bin"
if [ -n "$ssefs_bin" ]; then
	cp "$ssefs_bin" "$bin/ssefs"
else
	say "building ssefs"
	(cd "$repo" && go build -o "$bin/ssefs" ./cmd/ssefs)
fi
# shellcheck source=SCRIPTDIR/lib/minio.sh
source "$repo/scripts/lib/minio.sh"
ssefs_install_minio >&2

# --- helpers ---------------------------------------------------------------------------------------
# cpu_ticks PID: user+system CPU time of PID so far, in clock ticks (0 once it is gone).
cpu_ticks() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	st=${st##*) }
	# what follows the command name starts at field 3 (state): utime (14) and stime (15) are its 12th and 13th
	awk '{print $12 + $13}' <<<"$st"
}
hz=$(getconf CLK_TCK)

# --- MinIO: one server for the whole run --------------------------------------------------------
minio_user=benchadmin
minio_pass=bench-secret-$$-$RANDOM
minio_port=$(free_port)
minio_addr="127.0.0.1:$minio_port"
minio_log="$out/logs/minio.log"
bucket=ssefs-bench
mkdir -p "$run/minio"
say "starting MinIO on $minio_addr"
bg "$minio_log" minio env MINIO_ROOT_USER="$minio_user" MINIO_ROOT_PASSWORD="$minio_pass" MINIO_BROWSER=off \
	"$SSEFS_MINIO_BIN" server --quiet --address "$minio_addr" --console-address "127.0.0.1:$(free_port)" "$run/minio"
minio_pid=$bg_pid
wait_http "$minio_addr" "$minio_pid" "$minio_log" MinIO
# curl signs the request itself (SigV4); no S3 client needed for one CreateBucket.
code=$(curl -s -o "$run/mb.out" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
	--user "$minio_user:$minio_pass" -X PUT "http://$minio_addr/$bucket")
[ "$code" = 200 ] || die "creating bucket $bucket on MinIO failed (HTTP $code): $(cat "$run/mb.out")"

# --- ssefs mounts ------------------------------------------------------------------------------------
# One static master key for the run: generated keys would print a warning per data directory.
master_key="bench-key:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mnt="$run/mnt/ssefs"
mkdir -p "$mnt"
pprof_addr=""

# store_mount STORE ROUND: mount ssefs on STORE (local or s3) with that round's data directory.
store_mount() {
	local s=$1 r=$2 data="$run/data-$1" log="$out/logs/r$2-$1.log"
	local args=(mount --data-dir "$data" "${mount_flags[@]}")
	[ "$s" = s3 ] && args+=(--store "s3://$bucket/r$r" --store-endpoint "$minio_addr" --store-insecure)
	pprof_addr=""
	local envs=(SSEFS_KMS_MASTER_KEY="$master_key" AWS_ACCESS_KEY_ID="$minio_user" AWS_SECRET_ACCESS_KEY="$minio_pass" "${ssefs_env[@]}")
	if [ "$profile" = 1 ]; then
		pprof_addr="127.0.0.1:$(free_port)"
		envs+=(SSEFS_DEBUG_PPROF="$pprof_addr")
	fi
	echo "--- mount $(date +%T)" >>"$log"
	bg "$log" ssefs env "${envs[@]}" "$bin/ssefs" "${args[@]}" "$mnt"
	mount_pid=$bg_pid
	wait_mount "$mnt" "$mount_pid" "$log" "ssefs on the $s store"
	[ -z "$read_ahead_kb" ] || echo "$read_ahead_kb" >"/sys/class/bdi/$(mountpoint -d "$mnt")/read_ahead_kb"
}

store_umount() { # unmount and wait for ssefs to exit (it flushes and syncs first)
	local i
	unmount "$mnt"
	for ((i = 0; i < 3000; i++)); do
		alive "$mount_pid" || break
		sleep 0.1
	done
	alive "$mount_pid" && die "ssefs (pid $mount_pid) did not exit within 300 s of its unmount"
	wait "$mount_pid" 2>/dev/null || true
}

# phase TAG NAME METRIC ROUND STORE FIO_ARGS...: run fio, record its MB/s and the CPU seconds
# per GiB that ssefs and MinIO spent meanwhile; with --profile, a CPU profile of ssefs during
# the phase and its block profile after it.
phase() {
	local tag=$1 name=$2 metric=$3 r=$4 s=$5 ss0 mm0 ss1 mm1 v prof_pid=""
	shift 5
	if [ -n "$pprof_addr" ]; then
		curl -s -o "$out/raw/$tag-$name.cpu.pprof" \
			"http://$pprof_addr/debug/pprof/profile?seconds=$profile_secs" &
		prof_pid=$!
	fi
	ss0=$(cpu_ticks "$mount_pid") mm0=$(cpu_ticks "$minio_pid")
	fio_run "$tag" "$name" "$@"
	ss1=$(cpu_ticks "$mount_pid") mm1=$(cpu_ticks "$minio_pid")
	v=$(fio_get bw_mbps)
	record "$r" "$s" "$metric" "$v"
	local gib
	gib=$("$py" -c "print($size_mib / 1024)")
	record "$r" "$s" "${metric%_MBps}_ssefs_cpu_s_per_GiB" "$("$py" -c "print('%.2f' % (($ss1 - $ss0) / $hz / $gib))")"
	record "$r" "$s" "${metric%_MBps}_minio_cpu_s_per_GiB" "$("$py" -c "print('%.2f' % (($mm1 - $mm0) / $hz / $gib))")"
	if [ -n "$prof_pid" ]; then
		wait "$prof_pid" || say "  CPU profile of $tag $name failed"
		curl -s -o "$out/raw/$tag-$name.block.pprof" "http://$pprof_addr/debug/pprof/block" ||
			say "  block profile of $tag $name failed"
	fi
	say "  $name ${v} MB/s"
}

# store_round ROUND STORE: write then read a file of size_mib on a fresh data directory.
store_round() {
	local r=$1 s=$2 tag="r$1-$2" d="$mnt/bench"
	say "round $r: $s store"
	record "$r" "$s" loadavg_1m "$(cut -d' ' -f1 /proc/loadavg)"
	rm -rf "$run/data-$s"
	store_mount "$s" "$r"
	mkdir "$d"
	cold
	phase "$tag" seqwrite seq_write_MBps "$r" "$s" --filename="$d/seq" --rw=write --bs=1M \
		--size="${size_mib}M" --end_fsync=1
	# Cold read: a new ssefs process (nothing decrypted or cached in its memory), and no page
	# cache. The unmount and mount are not timed.
	store_umount
	cold
	store_mount "$s" "$r"
	phase "$tag" seqread seq_read_MBps "$r" "$s" --filename="$d/seq" --rw=read --bs=1M --size="${size_mib}M"
	# Unlinked here, its chunk objects go when the unmount syncs: MinIO's drive stays small.
	rm -f "$d/seq"
	store_umount
	rm -rf "$run/data-$s"
}

# --- the run ------------------------------------------------------------------------------------------
say "results in $out; work directory $run"
{
	meta_machine
	echo "rounds=$rounds"
	echo "size_mib=$size_mib"
	echo "stores=${stores[*]}"
	echo "mount_flags=${mount_flags[*]}"
	echo "ssefs_env=${ssefs_env[*]}"
	echo "read_ahead_kb=${read_ahead_kb:-kernel default}"
	echo "go=$(go version | awk '{print $3}')"
	echo "ssefs=$("$bin/ssefs" version 2>&1 | head -n 1)${ssefs_bin:+ ($ssefs_bin)}"
	echo "fio=$(fio --version)"
	echo "minio=$ssefs_minio_version"
	echo "uptime_start=$(uptime)"
} >"$out/meta.txt"

for ((r = 1; r <= rounds; r++)); do
	# alternate which store goes first
	order=("${stores[@]}")
	if [ $((r % 2)) = 0 ] && [ ${#stores[@]} = 2 ]; then order=("${stores[1]}" "${stores[0]}"); fi
	for s in "${order[@]}"; do
		store_round "$r" "$s"
	done
done
elapsed=$(($(date +%s) - started))
{
	echo "uptime_end=$(uptime)"
	echo "elapsed_s=$elapsed"
} >>"$out/meta.txt"

# --- table ---------------------------------------------------------------------------------------------
"$py" - "$csv" "$out/meta.txt" "$size_mib" >"$out/table.md" <<-'EOF'
	import csv, statistics, sys
	rows = list(csv.DictReader(open(sys.argv[1])))
	meta = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[2]) if "=" in l)
	size = sys.argv[3]
	fig = {}
	for r in rows:
	    fig.setdefault((r["store"], r["metric"]), []).append((int(r["round"]), float(r["value"])))
	def vals(s, m):
	    return [v for _, v in sorted(fig.get((s, m), []))]
	def med(s, m):
	    v = vals(s, m)
	    return statistics.median(v) if v else float("nan")
	names = {"local": "local (DATA/objects)", "s3": "S3 (MinIO on loopback)"}
	print("Sequential throughput through the mount, %s MiB file, 1 MiB requests, %s round(s), medians (MB/s = 10^6 bytes/s):" % (size, meta.get("rounds")))
	print()
	print("| store | seq write MB/s | seq read MB/s (cold) | write rounds | read rounds | ssefs CPU s/GiB w / r | MinIO CPU s/GiB w / r |")
	print("|---|---:|---:|---|---|---:|---:|")
	present = [s for s in ("local", "s3") if vals(s, "seq_write_MBps")]
	for s in present:
	    w, rd = vals(s, "seq_write_MBps"), vals(s, "seq_read_MBps")
	    print("| %s | %.0f | %.0f | %s | %s | %.2f / %.2f | %.2f / %.2f |" % (
	        names[s], med(s, "seq_write_MBps"), med(s, "seq_read_MBps"),
	        ", ".join("%.0f" % x for x in w), ", ".join("%.0f" % x for x in rd),
	        med(s, "seq_write_ssefs_cpu_s_per_GiB"), med(s, "seq_read_ssefs_cpu_s_per_GiB"),
	        med(s, "seq_write_minio_cpu_s_per_GiB"), med(s, "seq_read_minio_cpu_s_per_GiB")))
	lw, lr = med("local", "seq_write_MBps"), med("local", "seq_read_MBps")
	if present == ["local", "s3"] and lw and lr:
	    print("| S3 / local | %.2f | %.2f | | | | |" % (med("s3", "seq_write_MBps") / lw, med("s3", "seq_read_MBps") / lr))
	print()
	loads = [float(r["value"]) for r in rows if r["metric"] == "loadavg_1m"]
	print("1-minute load average as each part started: %.1f-%.1f (%s); %s." % (
	    min(loads), max(loads), meta.get("cpu", "?"), meta.get("uptime_end", "").strip()))
	print("Run %s, commit %s (+%s uncommitted files), fio %s, MinIO %s, %s s." % (
	    meta.get("date_utc"), meta.get("commit"), meta.get("uncommitted_files"), meta.get("fio"),
	    meta.get("minio"), meta.get("elapsed_s")))
EOF
echo
cat "$out/table.md"
echo
echo "results: $out (table.md, raw.csv, raw/, logs/) in ${elapsed}s"
