#!/usr/bin/env bash
# Benchmarks ssefs against its peers on this machine (issue #5), as root:
#
#   FUSE  ssefs, gocryptfs, securefs and a plain go-fuse v2 loopback (no crypto, built from
#         internal/benchtools/loopbackfs), each mounted over a directory on the same disk, run
#         the same fio and small-file workloads: sequential write and (cold) read, 4 KiB random
#         write and (cold) read, create / ls -lR / delete of many 4 KiB files. A go-fuse
#         in-memory file system (internal/benchtools/memfs: no disk, no crypto) runs the
#         small-file workloads too, as the floor: what the FUSE round trips alone cost here
#         (its ls -lR is not cold: its files live in its process). The disk itself (peer
#         "disk": the same workloads in a directory of the backing filesystem, no FUSE, no
#         crypto) shows what the filesystem under every peer gives them;
#   mem   ssefs' peak resident set while 64 files are written at once and while one big file
#         is written in;
#   S3    `ssefs serve` against a MinIO server with SSE-S3 (static KMS key), both measured with
#         the shared s3bench client (PUT/GET 1 MiB and 64 MiB with 1 and 8 clients, 4 KiB PUT
#         latency).
#
# Every peer gets a fresh store each round, peers are interleaved within a round (the order
# rotates from round to round) so that the machine's noise hits all of them alike, and the
# tables show the median of the rounds with ssefs' ratios to gocryptfs and to the loopback (FUSE)
# and to MinIO (S3), and the issue's targets, met or missed. Compare figures only within one
# run: absolute numbers on a shared machine swing 2-3x between runs, ratios within a run hold.
#
# Usage: scripts/bench.sh [flags]
#   --quick            development run: 1 round, 256 MiB sequential, 64 MiB random files with 5 s
#                      random phases, 1,000 small files, 64 x 16 MiB and a 1 GiB big file for the
#                      memory test, 3 s s3bench phases with 200 latency operations
#   --rounds N         rounds (default 4; 1 with --quick unless given)
#   --only WHAT        fuse (FUSE workloads and the memory test), mem (memory test only) or s3
#   --peers LIST       comma-separated FUSE peers (default ssefs,gocryptfs,securefs,loopback,memfs,disk;
#                      securefs is left out when it cannot be installed)
#   --big-gib N        size of the big file of the memory test (default 10; 1 with --quick)
#   --workdir DIR      where stores and mountpoints live, on the disk to measure
#                      (default $SSEFS_BENCH_WORKDIR, else /var/tmp/ssefs-bench); a run uses
#                      DIR/run.PID and removes it at the end
#   --results DIR      results root (default $SSEFS_BENCH_RESULTS, else bench-results/ in the
#                      repository); a run writes DIR/<UTC timestamp>/
#   --keep             keep the run's work directory at the end (a failed part leaves its store
#                      there), for a post-mortem
#   -h, --help         this text
# Env:   SSEFS_S3BENCH_DIR   source of the s3bench client (default ../shared/s3bench beside the
#                            repository)
#
# Output: the tables on stdout, and in the results directory table.md (the same tables, plus
# each figure's min-max over the rounds and s3bench's own summary), bench.png (bars normalised
# to gocryptfs = 1 with the targets, and ssefs/MinIO for S3), raw.csv (every measurement of every
# round), raw/ (fio and s3bench JSON, small-file JSON, RSS samples), logs/ (stderr of every
# mount and server) and bench.log (this run's output).
#
# It installs what is missing (apt-get: fio gocryptfs securefs python3-matplotlib curl), builds
# ssefs, loopbackfs, memfs, smallfiles and s3bench into a temporary directory, and MinIO through
# scripts/lib/minio.sh (cached in the Go cache after the first build). Every mount and process
# it starts is stopped on exit, also on Ctrl-C and on failure. A part that fails (say fio gets EIO
# from a peer) is reported with its log and the run goes on; the exit status is then 1. On a
# 2-core machine a round takes about 10 minutes (FUSE 5, memory 1-2, S3 4), so the default 4
# rounds about 40; --quick about 3.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me="scripts/bench.sh"
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C
# shellcheck source=SCRIPTDIR/lib/bench.sh
source "$repo/scripts/lib/bench.sh"

# --- flags -----------------------------------------------------------------------------------
quick=0
rounds=""
only=all
peers_arg=""
big_gib=""
workroot=${SSEFS_BENCH_WORKDIR:-/var/tmp/ssefs-bench}
results_root=${SSEFS_BENCH_RESULTS:-$repo/bench-results}
keep=0
while [ "$#" -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--rounds) need_arg "$@"; rounds=$2; shift ;;
	--rounds=*) rounds=${1#*=} ;;
	--only) need_arg "$@"; only=$2; shift ;;
	--only=*) only=${1#*=} ;;
	--peers) need_arg "$@"; peers_arg=$2; shift ;;
	--peers=*) peers_arg=${1#*=} ;;
	--big-gib) need_arg "$@"; big_gib=$2; shift ;;
	--big-gib=*) big_gib=${1#*=} ;;
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
case "$only" in all | fuse | mem | s3) ;; *) echo "$me: --only must be fuse, mem or s3, got '$only'" >&2; exit 2 ;; esac
[ -n "$rounds" ] || { [ "$quick" = 1 ] && rounds=1 || rounds=4; }
[ -n "$big_gib" ] || { [ "$quick" = 1 ] && big_gib=1 || big_gib=10; }
case "$rounds" in '' | *[!0-9]* | 0) echo "$me: --rounds must be a positive number, got '$rounds'" >&2; exit 2 ;; esac
case "$big_gib" in '' | *[!0-9]* | 0) echo "$me: --big-gib must be a positive number, got '$big_gib'" >&2; exit 2 ;; esac
all_peers=(ssefs gocryptfs securefs loopback memfs disk)
IFS=, read -r -a peers <<<"${peers_arg:-ssefs,gocryptfs,securefs,loopback,memfs,disk}"
for p in "${peers[@]}"; do
	case " ${all_peers[*]} " in *" $p "*) ;; *) echo "$me: unknown peer '$p' (known: ${all_peers[*]})" >&2; exit 2 ;; esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (it mounts FUSE file systems and drops the page cache): sudo $me"
[ -e /dev/fuse ] || die "/dev/fuse is missing: FUSE is not available here"

do_fuse=0 do_mem=0 do_s3=0
case "$only" in
all) do_fuse=1 do_mem=1 do_s3=1 ;;
fuse) do_fuse=1 do_mem=1 ;;
mem) do_mem=1 ;;
s3) do_s3=1 ;;
esac
case " ${peers[*]} " in *" ssefs "*) ;; *) do_mem=0 ;; esac

# --- workload sizes ----------------------------------------------------------------------------
if [ "$quick" = 1 ]; then
	seq_mib=256 rand_mib=64 rand_secs=5 nfiles=1000 mem_file_mib=16 s3_dur=3s s3_lat_ops=200
else
	seq_mib=1024 rand_mib=256 rand_secs=20 nfiles=5000 mem_file_mib=64 s3_dur=12s s3_lat_ops=2000
fi
file_bytes=4096 # small-file size
per_dir=100     # small files per directory: ls -lR walks a tree of nfiles/100 directories
mem_writers=64  # files written at once in the memory test
# shellcheck disable=SC2034 # read through ${!v} into meta.txt, for the report
rss_limit_mib=512

# --- output and work directories ----------------------------------------------------------------
bench_setup "" run peer
failures="$out/failures.txt"
: >"$failures"

trap 'bench_cleanup 10' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- system packages -----------------------------------------------------------------------------
want=(fio python3-matplotlib)
[ "$do_fuse" = 1 ] && want+=(gocryptfs securefs)
[ "$do_s3" = 1 ] && want+=(curl)
missing=()
for p in "${want[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	apt-get update -q </dev/null >/dev/null
	# one at a time: securefs is not in every Debian release, and is optional
	for p in "${missing[@]}"; do
		if ! apt-get install -y -q --no-install-recommends "$p" </dev/null >/dev/null; then
			[ "$p" = securefs ] || die "apt-get install $p failed"
			say "securefs could not be installed: benchmarking without it"
		fi
	done
fi
if [ "$do_fuse" = 1 ] && ! command -v securefs >/dev/null; then
	peers_left=()
	for p in "${peers[@]}"; do [ "$p" = securefs ] || peers_left+=("$p"); done
	peers=("${peers_left[@]}")
fi
py=/usr/bin/python3 # Debian's, which has python3-matplotlib (not a pyenv/venv python3 on PATH)
[ -x "$py" ] || die "$py is missing (apt-get install python3-matplotlib)"

# --- builds ----------------------------------------------------------------------------------------
bin="$run/bin"
say "building ssefs and the bench tools"
(cd "$repo" && go build -o "$bin/ssefs" ./cmd/ssefs)
(cd "$repo" && go build -o "$bin/loopbackfs" ./internal/benchtools/loopbackfs)
(cd "$repo" && go build -o "$bin/memfs" ./internal/benchtools/memfs)
(cd "$repo" && go build -o "$bin/smallfiles" ./internal/benchtools/smallfiles)
if [ "$do_s3" = 1 ]; then
	s3bench_dir=${SSEFS_S3BENCH_DIR:-$repo/../shared/s3bench}
	[ -f "$s3bench_dir/main.go" ] || die "s3bench source not found in $s3bench_dir: set SSEFS_S3BENCH_DIR to its directory"
	(cd "$s3bench_dir" && go build -o "$bin/s3bench" .)
	# shellcheck source=SCRIPTDIR/lib/minio.sh
	source "$repo/scripts/lib/minio.sh"
	ssefs_install_minio >&2
fi

# --- helpers ---------------------------------------------------------------------------------------
# record_load ROUND WHO: the 1-minute load average as a part starts: on a shared machine it tells
# how much else was running (the report shows its range).
record_load() { record "$1" "$2" loadavg_1m "$(cut -d' ' -f1 /proc/loadavg)"; }

# stop_pid PID TIMEOUT_S: wait for PID (a child of this shell) to exit, then TERM, then KILL.
stop_pid() {
	local pid=$1 t=$2 i
	for ((i = 0; i < t * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		say "process $pid did not exit within ${t}s: SIGTERM"
		kill -TERM "$pid" 2>/dev/null || true
		sleep 5
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# --- the FUSE peers --------------------------------------------------------------------------------
# Each peer has a store ("back": ssefs' data directory, gocryptfs' and securefs' cipher directory,
# the loopback's original) and a mountpoint, both under $run on the disk being measured.
pwfile="$run/password"
echo "bench-password" >"$pwfile"

peer_init() { # peer_init PEER: a fresh, empty store
	local p=$1 back="$run/$1.store"
	rm -rf "$back"
	mkdir -p "$back" "$run/mnt/$p"
	case "$p" in
	gocryptfs) gocryptfs -init -q -passfile "$pwfile" "$back" >>"$out/logs/gocryptfs-init.log" 2>&1 ;;
	securefs) securefs create --pass bench-password "$back" >>"$out/logs/securefs-init.log" 2>&1 ;;
	esac
}

declare -A mount_pid=()
# peer_dir PEER: where PEER's files live: its mountpoint, or for the disk a directory beside the
# other peers' stores.
peer_dir() { if [ "$1" = disk ]; then echo "$run/disk.store"; else echo "$run/mnt/$1"; fi; }
peer_mount() { # peer_mount PEER: mount it (in the foreground of a background job), wait until ready
	local p=$1 back="$run/$1.store" mnt="$run/mnt/$1" log="$out/logs/$tag.log"
	[ "$p" != disk ] || return 0
	echo "--- mount $(date +%T)" >>"$log"
	case "$p" in
	ssefs) bg "$log" ssefs "$bin/ssefs" mount --data-dir "$back" "$mnt" ;;
	gocryptfs) bg "$log" gocryptfs gocryptfs -fg -q -passfile "$pwfile" "$back" "$mnt" ;;
	securefs) bg "$log" securefs securefs mount --pass bench-password "$back" "$mnt" ;;
	loopback) bg "$log" loopbackfs "$bin/loopbackfs" "$back" "$mnt" ;;
	memfs) bg "$log" memfs "$bin/memfs" "$mnt" ;;
	esac
	mount_pid[$p]=$bg_pid
	wait_mount "$mnt" "$bg_pid" "$log" "$p"
}
peer_umount() { # peer_umount PEER: unmount, wait for the process to exit (ssefs flushes first)
	local p=$1
	[ "$p" != disk ] || return 0
	unmount "$run/mnt/$p" "$p"
	stop_pid "${mount_pid[$p]}" 300
	unset "mount_pid[$p]"
}
# peer_remount PEER: unmount, drop every cache, mount again. A FUSE daemon may cache data in its
# own memory, out of reach of drop_caches (ssefs keeps decrypted chunks and Badger's block cache,
# securefs its block cache); a fresh process is the only way to make a read cold for every peer
# alike. The unmount and mount are not timed. The in-memory floor would lose its files, and the
# disk has no process: they only get the page cache dropped.
peer_remount() {
	if [ "$1" = memfs ] || [ "$1" = disk ]; then
		cold
		return
	fi
	peer_umount "$1"
	cold
	peer_mount "$1"
}

# drop_mounts: the EXIT trap of a peer's round (a subshell): if it fails half-way, detach its
# mounts and stop their processes, so that the next peer starts on a clean machine.
drop_mounts() {
	local rc=$? q
	for q in "${!mount_pid[@]}"; do
		umount -l "$run/mnt/$q" 2>/dev/null || true
		kill -TERM "${mount_pid[$q]}" 2>/dev/null || true
	done
	return "$rc" # keep the round's exit status
}

# fuse_round ROUND PEER: every FUSE workload on PEER, on a fresh store.
fuse_round() {
	local r=$1 p=$2 d v t0 t1
	d="$(peer_dir "$2")/bench"
	tag="r$r-$p"
	say "round $r: $p"
	record_load "$r" "$p"
	peer_init "$p"
	peer_mount "$p"
	trap drop_mounts EXIT
	# A directory of the mount, not its root: the root of an ssefs mount lists buckets, and
	# mkdir there creates one, so the files live one level down on every peer alike.
	mkdir "$d"

	# The in-memory floor runs only the small-file phases: its big files would measure Go's
	# allocator and page faults, and its reads can never be cold.
	if [ "$p" != memfs ]; then
	# Sequential write of one big file; end_fsync=1 counts the time to make it durable, so a
	# peer that buffers in memory (as ssefs' write-back buffer does) is not flattered.
	cold
	fio_run "$tag" seqwrite --filename="$d/seq" --rw=write --bs=1M --size="${seq_mib}M" --end_fsync=1
	v=$(fio_get bw_mbps); record "$r" "$p" seq_write_MBps "$v"; say "  seq write ${v} MB/s"

	# Sequential read of it, cold: remount (see peer_remount) and drop the page cache.
	peer_remount "$p"
	fio_run "$tag" seqread --filename="$d/seq" --rw=read --bs=1M --size="${seq_mib}M"
	v=$(fio_get bw_mbps); record "$r" "$p" seq_read_MBps "$v"; say "  seq read ${v} MB/s"
	rm -f "$d/seq"

	# 4 KiB random writes over a file laid out first (untimed), for a fixed time, then fsync
	# (counted). One job, queue depth 1, buffered psync: on a FUSE mount without writeback
	# caching each 4 KiB write(2) is one synchronous FUSE WRITE request, whatever the ioengine
	# (libaio is only asynchronous with O_DIRECT, which the peers do not all support); so
	# depth 1 measures the per-request cost of each file system, identically for all. fio's
	# random sequence is seeded the same way for every peer (randrepeat=1).
	fio_run "$tag" layout --filename="$d/rand" --rw=write --bs=1M --size="${rand_mib}M" --end_fsync=1
	cold
	fio_run "$tag" randwrite --filename="$d/rand" --rw=randwrite --bs=4k --size="${rand_mib}M" \
		--time_based --runtime="$rand_secs" --end_fsync=1 --randrepeat=1
	v=$(fio_get iops); record "$r" "$p" rand_write_iops "$v"; say "  rand write 4k ${v} IOPS"

	# 4 KiB random reads of that file, cold (remount + drop caches), same pattern. fio's
	# default fadvise_hint tells the kernel the access is random (no readahead).
	peer_remount "$p"
	fio_run "$tag" randread --filename="$d/rand" --rw=randread --bs=4k --size="${rand_mib}M" \
		--time_based --runtime="$rand_secs" --randrepeat=1
	v=$(fio_get iops); record "$r" "$p" rand_read_iops "$v"; say "  rand read 4k ${v} IOPS"
	rm -f "$d/rand"
	fi # not memfs

	# Small files, one thread: create (open, write 4 KiB, close; no fsync), then ls -lR of the
	# tree cold (remount + drop caches), then delete them all.
	cold
	mkdir "$d/small"
	"$bin/smallfiles" create "$d/small" "$nfiles" "$file_bytes" "$per_dir" >"$out/raw/$tag-create.json"
	v=$("$py" -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["files_per_sec"])' "$out/raw/$tag-create.json")
	record "$r" "$p" create_fps "$v"; say "  create ${v} files/s"
	peer_remount "$p"
	t0=$(date +%s%N)
	ls -lR "$d/small" >"$out/raw/$tag-ls.txt"
	t1=$(date +%s%N)
	local listed
	listed=$(grep -c '^-' "$out/raw/$tag-ls.txt" || true)
	[ "$listed" -eq "$nfiles" ] || die "ls -lR on $p listed $listed files, want $nfiles"
	rm -f "$out/raw/$tag-ls.txt"
	v=$("$py" -c "print('%.1f' % ($nfiles / (($t1 - $t0) / 1e9)))")
	record "$r" "$p" ls_fps "$v"; say "  ls -lR ${v} files/s"
	"$bin/smallfiles" delete "$d/small" "$nfiles" "$per_dir" >"$out/raw/$tag-delete.json"
	v=$("$py" -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["files_per_sec"])' "$out/raw/$tag-delete.json")
	record "$r" "$p" delete_fps "$v"; say "  delete ${v} files/s"

	peer_umount "$p"
	trap - EXIT
	rm -rf "$run/$p.store"
}

# rss_watch PID FILE: append PID's VmRSS (KiB) to FILE every 0.2 s while it lives; sets rss_pid.
rss_watch() {
	local pid=$1 file=$2
	(while [ -r "/proc/$pid/status" ]; do
		awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true
		sleep 0.2
	done) >>"$file" &
	rss_pid=$!
}
# rss_peak NAME PID: stops the watcher; sets hwm (VmHWM, the kernel's own peak of the process,
# fresh for this test as the mount was started for it) and smax (the sampled VmRSS maximum), MiB.
rss_peak() {
	local name=$1 pid=$2 top
	kill "$rss_pid" 2>/dev/null || true
	wait "$rss_pid" 2>/dev/null || true
	hwm=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
	top=$(sort -n "$out/raw/$tag-$name-rss.txt" | tail -n 1)
	smax=$((${top:-0} / 1024))
	[ -n "$hwm" ] || die "ssefs (pid $pid) is gone: no VmHWM"
}

# mem_test ROUND NAME FIO_ARGS...: ssefs' peak RSS while fio writes, on a fresh store and mount
# (so VmHWM, the kernel's own peak of the process, is this test's peak), default flags (the
# write-back buffer bound is --write-buffer-mb, default 256). The RSS is recorded even when fio
# fails, then the failure is reported.
mem_test() {
	local r=$1 name=$2 d="$run/mnt/ssefs/bench" v rc=0
	shift 2
	tag="r$r-mem"
	record_load "$r" "mem-$name"
	trap drop_mounts EXIT
	peer_init ssefs
	peer_mount ssefs
	mkdir "$d"
	cold
	rss_watch "${mount_pid[ssefs]}" "$out/raw/$tag-$name-rss.txt"
	fio_run "$tag" "$name" "$@" || rc=$?
	rss_peak "$name" "${mount_pid[ssefs]}"
	record "$r" ssefs "mem_${name}_rss_MiB" "$hwm"
	[ "$rc" = 0 ] || die "fio $name on ssefs failed (exit $rc) after a peak RSS of $hwm MiB"
	v=$(fio_get bw_mbps)
	record "$r" ssefs "mem_${name}_MBps" "$v"
	say "  $v MB/s, peak RSS $hwm MiB (sampled max $smax MiB)"
	peer_umount ssefs
	trap - EXIT
	rm -rf "$run/ssefs.store"
}
mem_parallel() {
	say "round $1: ssefs memory: $mem_writers files of $mem_file_mib MiB written at once"
	mem_test "$1" parallel --directory="$run/mnt/ssefs/bench" --rw=write --bs=1M \
		--size="${mem_file_mib}M" --numjobs="$mem_writers" --group_reporting --end_fsync=1
}
mem_big() {
	# One writer streaming the file in, as cp does, with 1 MiB writes, made durable at the end.
	say "round $1: ssefs memory: one $big_gib GiB file written in"
	mem_test "$1" big --filename="$run/mnt/ssefs/bench/big" --rw=write --bs=1M \
		--size="${big_gib}G" --end_fsync=1
}

# --- S3 ----------------------------------------------------------------------------------------------
s3_user=benchadmin
s3_pass=bench-secret-$$-$RANDOM
s3_round() { # s3_round ROUND SERVER
	local r=$1 s=$2 dir="$run/$2.s3store" log="$out/logs/r$1-s3-$2.log" port addr mode
	tag="r$r-$s"
	say "round $r: S3 $s"
	record_load "$r" "s3-$s"
	rm -rf "$dir"
	mkdir -p "$dir"
	port=$(free_port)
	addr="127.0.0.1:$port"
	trap 'rc=$?; kill -TERM "$s3_pid" 2>/dev/null; exit "$rc"' EXIT
	case "$s" in
	minio)
		# Single drive, SSE-S3 under a static KMS key; every PUT of s3bench -sse asks for
		# SSE-S3, which s3bench checks on a sample of objects (StatObject).
		mode=minio-sse
		bg "$log" minio env MINIO_ROOT_USER="$s3_user" MINIO_ROOT_PASSWORD="$s3_pass" \
			MINIO_KMS_SECRET_KEY="bench-key:$(head -c 32 /dev/urandom | base64)" MINIO_BROWSER=off \
			"$SSEFS_MINIO_BIN" server --quiet --address "$addr" --console-address "127.0.0.1:$(free_port)" "$dir"
		;;
	ssefs)
		mode=ssefs
		bg "$log" ssefs env SSEFS_ROOT_USER="$s3_user" SSEFS_ROOT_PASSWORD="$s3_pass" \
			"$bin/ssefs" serve --data-dir "$dir" --s3-address "$addr"
		;;
	esac
	s3_pid=$bg_pid
	wait_http "$addr" "$s3_pid" "$log" "$s"
	cold
	"$bin/s3bench" -endpoint "$addr" -access "$s3_user" -secret "$s3_pass" -bucket bench -sse \
		-mode "$mode" -label "round $r" -dur "$s3_dur" -lat-ops "$s3_lat_ops" -server-pid "$s3_pid" \
		-json "$out/raw/s3-$s-r$r.json" >"$out/raw/s3-$s-r$r.md" 2>>"$log" ||
		{ tail -n 5 "$log" >&2; die "s3bench against $s failed (log: $log)"; }
	kill -TERM "$s3_pid"
	stop_pid "$s3_pid" 60
	trap - EXIT
	rm -rf "$dir"
}

# attempt WHAT FUNC ARGS...: run one peer's round in a subshell with errexit, so that one peer's
# failure (say an fio error on ssefs) is reported and the other peers still get measured.
attempt() {
	local what=$1 rc
	shift
	set +e
	(
		set -eE
		# name the command that failed (errtrace: also inside functions)
		trap 'say "failed in ${FUNCNAME[*]:-?}: $BASH_COMMAND (exit $?)"' ERR
		trap 'exit 130' INT
		trap 'exit 143' TERM
		"$@"
	)
	rc=$?
	set -e
	if [ "$rc" -eq 130 ] || [ "$rc" -eq 143 ]; then
		exit "$rc"
	fi
	if [ "$rc" -ne 0 ]; then
		say "FAILED: $what (exit $rc); see $out/logs"
		echo "$what (exit $rc)" >>"$failures"
		for m in "$run"/mnt/*; do
			[ -d "$m" ] && mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
		done
	fi
	return 0
}

# --- the run ------------------------------------------------------------------------------------------
say "results in $out; work directory $run"
{
	meta_machine
	echo "ncpu=$(nproc)"
	for v in rounds quick seq_mib rand_mib rand_secs nfiles file_bytes per_dir mem_writers \
		mem_file_mib big_gib rss_limit_mib s3_dur s3_lat_ops; do
		echo "$v=${!v}"
	done
	echo "go=$(go version | awk '{print $3}')"
	echo "fio=$(fio --version)"
	command -v gocryptfs >/dev/null && echo "gocryptfs=$(gocryptfs -version | head -n 1)"
	command -v securefs >/dev/null && echo "securefs=$(dpkg-query -W -f '${Version}' securefs 2>/dev/null)"
	echo "go_fuse=$(cd "$repo" && go list -m -f '{{.Version}}' github.com/hanwen/go-fuse/v2)"
	[ "$do_s3" = 1 ] && echo "minio=$ssefs_minio_version"
	echo "peers=${peers[*]}"
} >"$out/meta.txt"

for ((r = 1; r <= rounds; r++)); do
	if [ "$do_fuse" = 1 ]; then
		# rotate the order of the peers from round to round
		n=${#peers[@]}
		for ((k = 0; k < n; k++)); do
			p=${peers[$(((k + r - 1) % n))]}
			attempt "round $r $p" fuse_round "$r" "$p"
		done
	fi
	if [ "$do_mem" = 1 ]; then
		attempt "round $r ssefs memory, parallel writers" mem_parallel "$r"
		attempt "round $r ssefs memory, big file" mem_big "$r"
	fi
	if [ "$do_s3" = 1 ]; then
		if [ $((r % 2)) = 1 ]; then servers=(minio ssefs); else servers=(ssefs minio); fi
		for s in "${servers[@]}"; do
			attempt "round $r S3 $s" s3_round "$r" "$s"
		done
	fi
done

# --- tables and plot -------------------------------------------------------------------------------
elapsed=$(($(date +%s) - started))
echo "elapsed_s=$elapsed" >>"$out/meta.txt"
say "done in ${elapsed}s; writing tables and plot"
s3_summary="$out/s3bench-summary.md"
if [ "$do_s3" = 1 ] && compgen -G "$out/raw/s3-*.json" >/dev/null; then
	"$bin/s3bench" -summarize -base minio-sse "$out"/raw/s3-minio-r*.json "$out"/raw/s3-ssefs-r*.json >"$s3_summary" 2>&1 || true
fi
"$py" "$repo/scripts/bench_plot.py" --dir "$out"
if [ -s "$failures" ]; then
	echo
	echo "FAILED parts (their figures are missing above):"
	sed 's/^/  /' "$failures"
	echo "logs: $out/logs"
	exit 1
fi
echo
echo "results: $out (table.md, bench.png, raw.csv, raw/, logs/) in ${elapsed}s"
