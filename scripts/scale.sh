#!/usr/bin/env bash
# Measures how ssefs' costs grow with the size of a file's chunk map, of a directory and of a
# bucket (issue #5, "How cost grows"), as root, through real FUSE mounts:
#
#   big    one file each whose chunk map holds 1, 10 and 100 GiB worth of 1 MiB chunks. The
#          files are sparse: one 4 KiB write at the start of every chunk gives one chunk record
#          (and one ~4 KiB object) per MiB, so 100 GiB costs ~400 MiB of disk. Measured: the
#          writes, Badger and object sizes, then after a remount with the page cache dropped:
#          mount start, stat, 4 KiB reads of the first, last and a far chunk and of 200 random
#          chunks, truncate to 0 (drops the whole map) and the unmount that deletes the objects.
#   dir    directories of 1,000, 10,000 and 100,000 empty files: create rate, then, each after
#          a remount with the page cache dropped, `ls -f` (readdir), `ls -l` (readdir + stat),
#          and lstat of 1,000 random names (cold, then again warm), per operation.
#   tree   1,000,000 files of 100 bytes in 1,000 directories of 1,000 in one bucket: create
#          rate every 100,000 files with the Badger size at that point, Badger and object sizes
#          at the end, mount start, then S3 ListObjectsV2 through `ssefs serve` on the same data
#          dir (aws cli): one directory prefix, the bucket root with a delimiter, the first and
#          a late page of the whole bucket, and the whole bucket. Creation stops after the
#          budget (--budget-min, whole directories) and the 1M figures are then extrapolated,
#          and labelled so.
#
# Usage: scripts/scale.sh [flags]
#   --quick            development run: 64/256/1024 MiB maps, directories of 100/1,000/10,000,
#                      20,000 files in 20 directories, 5 minute budget
#   --only LIST        comma-separated sections: big, dir, tree (default all three)
#   --ssefs BIN        measure this ssefs binary (default: build ./cmd/ssefs into the work dir)
#   --workdir DIR      where data dirs and mountpoints live, on the disk to measure (default
#                      /var/tmp/scale-run); a run uses DIR/run.PID and removes it at the end
#   --budget-min N     time allowed for creating the tree (default 40; 5 with --quick)
#   --workers N        parallel creators for dir and tree (default 4)
#   --logs DIR         copy every ssefs stderr log there at the end
#   --keep             keep the work directory (data dirs) at the end
#   -h, --help         this text
#
# Output: progress on stderr; one Markdown table per section on stdout, as each finishes,
# then every unexpected line of ssefs' stderr. Needs go (builds a small timing helper with
# the standard library only), aws cli (apt-get installs awscli when missing) and ~10 GB free
# on the work dir's disk. Every mount and process it starts is stopped on exit, also on
# Ctrl-C and on failure. A full run takes about 25 minutes on 2 cores; --quick about a minute.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me="scripts/scale.sh"
export LC_ALL=C

# usage, die, need_arg and say: the helpers the benchmark scripts share.
# shellcheck source=SCRIPTDIR/lib/bench.sh
. "$repo/scripts/lib/bench.sh"

# --- flags -----------------------------------------------------------------------------------
quick=0 only=big,dir,tree ssefs_bin="" workroot=/var/tmp/scale-run budget_min="" workers=4
logs_out="" keep=0
while [ "$#" -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--only) need_arg "$@"; only=$2; shift ;;
	--only=*) only=${1#*=} ;;
	--ssefs) need_arg "$@"; ssefs_bin=$2; shift ;;
	--ssefs=*) ssefs_bin=${1#*=} ;;
	--workdir) need_arg "$@"; workroot=$2; shift ;;
	--workdir=*) workroot=${1#*=} ;;
	--budget-min) need_arg "$@"; budget_min=$2; shift ;;
	--budget-min=*) budget_min=${1#*=} ;;
	--workers) need_arg "$@"; workers=$2; shift ;;
	--workers=*) workers=${1#*=} ;;
	--logs) need_arg "$@"; logs_out=$2; shift ;;
	--logs=*) logs_out=${1#*=} ;;
	--keep) keep=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$me: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
do_big=0 do_dir=0 do_tree=0
IFS=, read -r -a sections <<<"$only"
for s in "${sections[@]}"; do
	case "$s" in
	big) do_big=1 ;;
	dir) do_dir=1 ;;
	tree) do_tree=1 ;;
	*) echo "$me: unknown section '$s' in --only (known: big, dir, tree)" >&2; exit 2 ;;
	esac
done
[ -n "$budget_min" ] || { [ "$quick" = 1 ] && budget_min=5 || budget_min=40; }
for v in budget_min workers; do
	case "${!v}" in '' | *[!0-9]* | 0) echo "$me: --${v/_/-} must be a positive number, got '${!v}'" >&2; exit 2 ;; esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (it mounts FUSE file systems and drops the page cache): sudo $me"
[ -e /dev/fuse ] || die "/dev/fuse is missing: FUSE is not available here"
command -v go >/dev/null || die "go is needed (for the timing helper, and to build ssefs without --ssefs)"

# --- sizes -----------------------------------------------------------------------------------
if [ "$quick" = 1 ]; then
	big_mib=(64 256 1024) dir_sizes=(100 1000 10000) tree_dirs=20
else
	big_mib=(1024 10240 102400) dir_sizes=(1000 10000 100000) tree_dirs=1000
fi
block=4096        # bytes written at the start of every chunk of the big files
rand_reads=200    # random 4 KiB reads of a big file
lookups=1000      # random names looked up per directory
tree_per_dir=1000 # files per directory of the tree
tree_file=100     # bytes per file of the tree
tree_total=$((tree_dirs * tree_per_dir))
tree_every=$((tree_total / 10))

# --- work directory and cleanup ----------------------------------------------------------------
mkdir -p "$workroot"
workroot=$(cd "$workroot" && pwd)
run="$workroot/run.$$"
rm -rf "$run"
mkdir -p "$run/bin" "$run/logs"
started=$(date +%s)
pids=()   # ssefs processes this run started
mounts=() # mountpoints this run mounted

# ours PID: PID is still a process this run started (not a reused PID, nor a zombie)
ours() {
	local st
	case "$(cat "/proc/$1/comm" 2>/dev/null)" in ssefs | scalehelper) ;; *) return 1 ;; esac
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}

cleanup() {
	local rc=$?
	set +e
	trap '' INT TERM PIPE
	local pid m
	for pid in "${pids[@]}"; do
		ours "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 300); do
			ours "$pid" || break
			sleep 0.2
		done
		ours "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	for m in "${mounts[@]}"; do
		[ -n "$m" ] && mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
	done
	if [ -n "$logs_out" ]; then
		mkdir -p "$logs_out" && cp "$run"/logs/* "$logs_out"/ 2>/dev/null
	fi
	if [ "$keep" = 1 ]; then
		echo "$me: kept the work directory $run" >&2
	else
		rm -rf "$run"
	fi
	if [ "$rc" -ne 0 ]; then
		echo "$me: FAILED (exit $rc) after $(($(date +%s) - started))s" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers -----------------------------------------------------------------------------------
now_ns() { date +%s%N; }
# secs START_NS: seconds since START_NS, 3 decimals
secs() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# hb BYTES: human-readable size
hb() { awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u, " "); i = 1; while (b >= 1024 && i < 5) { b /= 1024; i++ }; printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'; }
# ms SECONDS / usf MICROSECONDS: display forms
ms() { awk -v s="$1" 'BEGIN { v = s * 1000; printf (v < 10 ? "%.1f ms" : "%.0f ms"), v }'; }
sec() { awk -v s="$1" 'BEGIN { printf (s < 10 ? "%.2f s" : "%.0f s"), s }'; }
usf() { awk -v u="$1" 'BEGIN { printf (u >= 10000 ? "%.1f ms" : "%d µs"), (u >= 10000 ? u / 1000 : u) }'; }
num() { awk -v n="$1" 'BEGIN { s = sprintf("%d", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }; printf "%s%s", s, o }'; }
size_of() { du -sb "$1" | cut -f1; }
disk_of() { du -s --block-size=1 "$1" | cut -f1; }
# get KEY FILE: the value of "KEY value" lines the helper prints
get() { awk -v k="$1" '$1 == k { print $2 }' "$2" | tail -n1; }
# shellcheck disable=SC2012 # timing ls itself is the point
ls_count() { ls "$1" "$2" | wc -l; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
free_gib() { df -P --block-size=1G "$workroot" | awk 'NR == 2 { print $4 }'; }
need_space() {
	local f
	f=$(free_gib)
	[ "$f" -ge "$1" ] || die "only ${f} GiB free on $workroot, the $2 section needs $1 GiB"
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rss_of() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# cpu_of PID: user+system CPU seconds the process has used
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
hwm_of() { awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# start_mount NAME DATA MNT: mounts DATA's bucket "bench" on MNT; sets mount_pid and
# mount_start (seconds from launch to the "mounted" line)
mount_pid="" mount_start=""
mounted_lines() { { grep -c '^ssefs: mounted' "$1" 2>/dev/null || true; } | awk '{ n = $1 } END { print n + 0 }'; }
start_mount() {
	local name=$1 data=$2 mnt=$3 log t0 before
	mkdir -p "$data" "$mnt"
	log="$run/logs/$name.log"
	before=$(mounted_lines "$log")
	t0=$(now_ns)
	"$ssefs" mount --data-dir "$data" --bucket bench "$mnt" 2>>"$log" &
	mount_pid=$!
	pids+=("$mount_pid")
	mounts+=("$mnt")
	for _ in $(seq 60000); do
		if [ "$(mounted_lines "$log")" -gt "$before" ]; then
			mount_start=$(secs "$t0")
			mountpoint -q "$mnt" || die "$name: ssefs said mounted but $mnt is not a mountpoint"
			return 0
		fi
		kill -0 "$mount_pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "$name: ssefs mount exited before mounting (log above)"; }
		sleep 0.01
	done
	die "$name: ssefs did not mount within 10 minutes"
}

# stop_ssefs PID [MNT]: SIGTERM, wait; sets stop_secs and hwm (peak RSS bytes before the stop)
stop_secs="" hwm=0
stop_ssefs() {
	local pid=$1 mnt=${2:-} t0 rc=0
	hwm=$(hwm_of "$pid")
	t0=$(now_ns)
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	stop_secs=$(secs "$t0")
	[ "$rc" -eq 0 ] || say "WARNING: ssefs (pid $pid) exited $rc"
	if [ -n "$mnt" ] && mountpoint -q "$mnt"; then
		die "ssefs exited but $mnt is still mounted"
	fi
	return 0
}

# timed CMD...: runs CMD with stdout to $run/out, sets t_secs
t_secs=""
timed() {
	local t0
	t0=$(now_ns)
	"$@" >"$run/out"
	t_secs=$(secs "$t0")
}

# --- binaries ----------------------------------------------------------------------------------
if [ -n "$ssefs_bin" ]; then
	ssefs=$(cd "$(dirname "$ssefs_bin")" && pwd)/$(basename "$ssefs_bin")
	[ -x "$ssefs" ] || die "--ssefs $ssefs_bin is not an executable"
else
	say "building ssefs"
	(cd "$repo" && go build -o "$run/bin/ssefs" ./cmd/ssefs) || die "building ssefs failed"
	ssefs=$run/bin/ssefs
fi
say "building the timing helper"
mkdir -p "$run/helper"
cat >"$run/helper/main.go" <<'EOF'
// scalehelper: the timed operations of scripts/scale.sh. Every figure it prints is
// "key value" on stdout; progress goes to stderr.
package main

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const mib = 1 << 20

func die(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "scalehelper: "+f+"\n", a...)
	os.Exit(1)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		die("bad number %q", s)
	}
	return n
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// stats prints median, p99, mean and max of per-operation latencies in µs.
func stats(name string, ds []time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	n := len(s)
	fmt.Printf("%s_n %d\n", name, n)
	fmt.Printf("%s_p50_us %.0f\n", name, us(s[n/2]))
	fmt.Printf("%s_p99_us %.0f\n", name, us(s[min(n-1, n*99/100)]))
	fmt.Printf("%s_mean_us %.0f\n", name, us(sum/time.Duration(n)))
	fmt.Printf("%s_max_us %.0f\n", name, us(s[n-1]))
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func main() {
	if len(os.Args) < 2 {
		die("usage: scalehelper sparse|stat|readat|randread|truncate|mkfiles|statrand|tree ...")
	}
	a := os.Args[2:]
	switch os.Args[1] {
	case "sparse": // FILE NCHUNKS BLOCK: one BLOCK-byte write at the start of every 1 MiB chunk
		n, bs := atoi(a[1]), atoi(a[2])
		buf := pattern(bs)
		t0 := time.Now()
		f, err := os.OpenFile(a[0], os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			die("%v", err)
		}
		for i := 0; i < n; i++ {
			if _, err := f.WriteAt(buf, int64(i)*mib); err != nil {
				die("write chunk %d: %v", i, err)
			}
			if (i+1)%(max(n/10, 1)) == 0 {
				fmt.Fprintf(os.Stderr, "  %d/%d chunks written, %.1fs\n", i+1, n, time.Since(t0).Seconds())
			}
		}
		tw := time.Since(t0)
		if err := f.Sync(); err != nil {
			die("fsync: %v", err)
		}
		if err := f.Close(); err != nil {
			die("close: %v", err)
		}
		fmt.Printf("writes_s %.3f\n", tw.Seconds())
		fmt.Printf("total_s %.3f\n", time.Since(t0).Seconds())
	case "stat": // FILE
		t0 := time.Now()
		var st syscall.Stat_t
		if err := syscall.Stat(a[0], &st); err != nil {
			die("%v", err)
		}
		fmt.Printf("stat_us %.0f\nsize %d\n", us(time.Since(t0)), st.Size)
	case "readat": // FILE OFF LEN NAME: one pread (the open is not timed), content checked
		off, n := atoi(a[1]), atoi(a[2])
		buf := make([]byte, n)
		f, err := os.Open(a[0])
		if err != nil {
			die("%v", err)
		}
		t0 := time.Now()
		got, err := f.ReadAt(buf, int64(off))
		d := time.Since(t0)
		if err != nil || got != n {
			die("pread %d at %d: %d, %v", n, off, got, err)
		}
		want := pattern(n)
		if off%mib == 0 && string(buf) != string(want) {
			die("pread at %d: wrong content", off)
		}
		f.Close()
		fmt.Printf("%s_us %.0f\n", a[3], us(d))
	case "randread": // FILE NCHUNKS COUNT LEN SEED: COUNT preads of LEN at random chunk starts
		nch, cnt, n := atoi(a[1]), atoi(a[2]), atoi(a[3])
		r := rand.New(rand.NewSource(int64(atoi(a[4]))))
		buf := make([]byte, n)
		want := pattern(n)
		f, err := os.Open(a[0])
		if err != nil {
			die("%v", err)
		}
		ds := make([]time.Duration, 0, cnt)
		for i := 0; i < cnt; i++ {
			off := int64(r.Intn(nch)) * mib
			t0 := time.Now()
			got, err := f.ReadAt(buf, off)
			ds = append(ds, time.Since(t0))
			if err != nil || got != n || string(buf) != string(want) {
				die("pread at %d: %d, %v (or wrong content)", off, got, err)
			}
		}
		f.Close()
		stats("randread", ds)
	case "truncate": // FILE SIZE
		t0 := time.Now()
		if err := os.Truncate(a[0], int64(atoi(a[1]))); err != nil {
			die("%v", err)
		}
		fmt.Printf("truncate_s %.3f\n", time.Since(t0).Seconds())
	case "mkfiles": // DIR N WORKERS: N empty files f%06d, created by WORKERS goroutines
		dir, n, w := a[0], atoi(a[1]), atoi(a[2])
		var next atomic.Int64
		var wg sync.WaitGroup
		t0 := time.Now()
		for k := 0; k < w; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
					if err != nil {
						die("%v", err)
					}
					if err := f.Close(); err != nil {
						die("%v", err)
					}
				}
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		fmt.Printf("create_s %.3f\ncreate_per_s %.0f\n", d.Seconds(), float64(n)/d.Seconds())
	case "statrand": // DIR N COUNT SEED: lstat COUNT random names of f000000..f(N-1), twice
		dir, n, cnt := a[0], atoi(a[1]), atoi(a[2])
		r := rand.New(rand.NewSource(int64(atoi(a[3]))))
		names := make([]string, 0, cnt) // distinct names while there are enough
		for len(names) < cnt {
			for _, i := range r.Perm(n) {
				if len(names) == cnt {
					break
				}
				names = append(names, filepath.Join(dir, fmt.Sprintf("f%06d", i)))
			}
		}
		for _, pass := range []string{"cold", "warm"} {
			ds := make([]time.Duration, 0, cnt)
			var st syscall.Stat_t
			for _, p := range names {
				t0 := time.Now()
				if err := syscall.Lstat(p, &st); err != nil {
					die("lstat %s: %v", p, err)
				}
				ds = append(ds, time.Since(t0))
			}
			stats("lookup_"+pass, ds)
		}
	case "tree": // ROOT DIRS PERDIR SIZE WORKERS BUDGET_S EVERY: DIRS directories d%04d of
		// PERDIR files f%04d of SIZE bytes, by WORKERS goroutines taking whole directories;
		// no directory is started after BUDGET_S seconds; progress every EVERY files
		root, nd, per, size, w := a[0], atoi(a[1]), atoi(a[2]), atoi(a[3]), atoi(a[4])
		budget := time.Duration(atoi(a[5])) * time.Second
		every := int64(atoi(a[6]))
		data := make([]byte, size)
		for i := range data {
			data[i] = 'a' + byte(i%26)
		}
		var nextDir, done atomic.Int64
		var mu sync.Mutex
		t0 := time.Now()
		last, lastT := int64(0), t0
		report := func(c int64) {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			fmt.Printf("progress %d %.1f %.0f %.0f\n", c, now.Sub(t0).Seconds(),
				float64(c-last)/now.Sub(lastT).Seconds(), float64(c)/now.Sub(t0).Seconds())
			fmt.Fprintf(os.Stderr, "  %d files, %.0fs, %.0f files/s over the last %d\n", c, now.Sub(t0).Seconds(),
				float64(c-last)/now.Sub(lastT).Seconds(), c-last)
			last, lastT = c, now
		}
		var wg sync.WaitGroup
		for k := 0; k < w; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(t0) < budget {
					d := int(nextDir.Add(1) - 1)
					if d >= nd {
						return
					}
					dp := filepath.Join(root, fmt.Sprintf("d%04d", d))
					if err := os.Mkdir(dp, 0o755); err != nil {
						die("%v", err)
					}
					for i := 0; i < per; i++ {
						f, err := os.OpenFile(filepath.Join(dp, fmt.Sprintf("f%04d", i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
						if err != nil {
							die("%v", err)
						}
						if _, err := f.Write(data); err != nil {
							die("%v", err)
						}
						if err := f.Close(); err != nil {
							die("%v", err)
						}
						if c := done.Add(1); c%every == 0 {
							report(c)
						}
					}
				}
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		c := done.Load()
		if c%every != 0 {
			report(c)
		}
		fmt.Printf("files %d\ndirs %d\ncreate_s %.1f\ncreate_per_s %.0f\n", c, c/int64(per), d.Seconds(), float64(c)/d.Seconds())
	default:
		die("unknown command %q", os.Args[1])
	}
}
EOF
(cd "$run/helper" && GOFLAGS='' GO111MODULE=on go mod init scalehelper >/dev/null 2>&1 && GOFLAGS='' go build -o "$run/bin/scalehelper" .) ||
	die "building the timing helper failed"
helper=$run/bin/scalehelper

say "ssefs: $ssefs ($("$ssefs" version 2>&1 | head -n1)); work dir $run; $(free_gib) GiB free"
echo "# ssefs scaling, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM$([ "$quick" = 1 ] && echo ', --quick')"
echo

# --- 1. big files ------------------------------------------------------------------------------
if [ "$do_big" = 1 ]; then
	declare -A B
	for m in "${big_mib[@]}"; do
		need_space $((m / 1024 / 100 + 3)) big
		nch=$m
		d="$run/big$m"
		label=$([ "$m" -ge 1024 ] && echo "$((m / 1024)) GiB" || echo "$m MiB")
		say "big: $label = $nch chunks, one $block-byte write per chunk"
		start_mount "big$m" "$d/data" "$d/mnt"
		B[$m,mount0]=$mount_start
		timed "$helper" sparse "$d/mnt/big" "$nch" "$block"
		B[$m,write]=$(get total_s "$run/out")
		stop_ssefs "$mount_pid" "$d/mnt"
		B[$m,stop_w]=$stop_secs B[$m,hwm_w]=$hwm
		B[$m,meta]=$(size_of "$d/data/meta") B[$m,objs]=$(size_of "$d/data/objects")
		B[$m,nobj]=$(find "$d/data/objects" -type f | wc -l)
		starts=()
		for r in 1 2 3; do
			drop_caches
			start_mount "big$m" "$d/data" "$d/mnt"
			starts+=("$mount_start")
			[ "$r" = 3 ] || stop_ssefs "$mount_pid" "$d/mnt"
		done
		B[$m,mount]=$(median "${starts[@]}")
		# the page cache was dropped before the last mount: these are cold
		"$helper" stat "$d/mnt/big" >"$run/out"
		B[$m,stat]=$(get stat_us "$run/out")
		[ "$(get size "$run/out")" = $(((nch - 1) * 1048576 + block)) ] || die "big: $label has the wrong size: $(get size "$run/out")"
		"$helper" readat "$d/mnt/big" 0 4096 first >"$run/out"
		B[$m,first]=$(get first_us "$run/out")
		"$helper" readat "$d/mnt/big" $(((nch - 1) * 1048576)) 4096 last >"$run/out"
		B[$m,last]=$(get last_us "$run/out")
		"$helper" readat "$d/mnt/big" $(((nch * 3 / 4) * 1048576)) 4096 far >"$run/out"
		B[$m,far]=$(get far_us "$run/out")
		"$helper" randread "$d/mnt/big" "$nch" "$rand_reads" 4096 "$m" >"$run/out"
		B[$m,rp50]=$(get randread_p50_us "$run/out") B[$m,rp99]=$(get randread_p99_us "$run/out")
		timed "$helper" truncate "$d/mnt/big" 0
		B[$m,trunc]=$(get truncate_s "$run/out")
		stop_ssefs "$mount_pid" "$d/mnt"
		B[$m,stop_t]=$stop_secs B[$m,hwm_r]=$hwm
		B[$m,nobj_t]=$(find "$d/data/objects" -type f | wc -l)
		B[$m,meta_t]=$(size_of "$d/data/meta")
		say "big: $label done: write $(sec "${B[$m,write]}"), mount $(ms "${B[$m,mount]}"), truncate $(sec "${B[$m,trunc]}")"
		[ "$keep" = 1 ] || rm -rf "$d"
	done
	echo "## One file: chunk map of 1 MiB chunks (one ${block}-byte write per chunk)"
	echo
	row() { # LABEL KEY FORMATTER
		local out="| $1 |" m
		for m in "${big_mib[@]}"; do out+=" $($3 "${B[$m,$2]}") |"; done
		echo "$out"
	}
	hdr="| |" sep="| --- |"
	for m in "${big_mib[@]}"; do
		hdr+=" $([ "$m" -ge 1024 ] && echo "$((m / 1024)) GiB" || echo "$m MiB") ($(num "$m") chunks) |"
		sep+=" ---: |"
	done
	echo "$hdr"
	echo "$sep"
	row "write every chunk (incl. fsync+close)" write sec
	for m in "${big_mib[@]}"; do B[$m,wrate]=$(awk -v n="$m" -v s="${B[$m,write]}" 'BEGIN { printf "%.0f", n / s }'); done
	row "chunks written per second" wrate num
	row "unmount after writing" stop_w sec
	row "Badger (DATA/meta) after unmount" meta hb
	for m in "${big_mib[@]}"; do B[$m,metapc]=$(awk -v n="$m" -v b="${B[$m,meta]}" 'BEGIN { printf "%.0f", b / n }'); done
	row "Badger bytes per chunk" metapc num
	row "objects (DATA/objects)" objs hb
	row "first mount start (creates the store)" mount0 ms
	row "mount start with the map (cold cache, median of 3)" mount ms
	row "stat (cold)" stat usf
	row "4 KiB read, first chunk (cold)" first usf
	row "4 KiB read, last chunk" last usf
	row "4 KiB read, chunk at 3/4" far usf
	row "4 KiB read, $rand_reads random chunks, p50" rp50 usf
	row "4 KiB read, $rand_reads random chunks, p99" rp99 usf
	row "truncate to 0" trunc sec
	row "unmount after truncate (deletes objects)" stop_t sec
	row "objects left after truncate + unmount" nobj_t num
	row "Badger after truncate + unmount" meta_t hb
	row "ssefs peak RSS while writing" hwm_w hb
	row "ssefs peak RSS, remounted: reads + truncate" hwm_r hb
	echo
fi

# --- 2. directories ----------------------------------------------------------------------------
if [ "$do_dir" = 1 ]; then
	declare -A D
	need_space 3 dir
	d="$run/dir"
	say "dir: creating directories of ${dir_sizes[*]} empty files ($workers creators)"
	start_mount dir "$d/data" "$d/mnt"
	for n in "${dir_sizes[@]}"; do
		mkdir "$d/mnt/dir$n"
		"$helper" mkfiles "$d/mnt/dir$n" "$n" "$workers" >"$run/out"
		D[$n,create]=$(get create_per_s "$run/out")
		say "dir: $n files created at ${D[$n,create]}/s"
	done
	stop_ssefs "$mount_pid" "$d/mnt"
	D[meta]=$(size_of "$d/data/meta")
	mstarts=()
	for n in "${dir_sizes[@]}"; do
		drop_caches
		start_mount dir "$d/data" "$d/mnt"
		mstarts+=("$mount_start")
		timed ls_count -f "$d/mnt/dir$n"
		D[$n,lsf]=$t_secs
		[ "$(cat "$run/out")" -eq $((n + 2)) ] || die "dir: ls -f of dir$n listed $(cat "$run/out") names, not $((n + 2))"
		timed ls_count -f "$d/mnt/dir$n"
		D[$n,lsf_w]=$t_secs
		stop_ssefs "$mount_pid" "$d/mnt"
		drop_caches
		start_mount dir "$d/data" "$d/mnt"
		mstarts+=("$mount_start")
		timed ls_count -l "$d/mnt/dir$n"
		D[$n,lsl]=$t_secs
		timed ls_count -l "$d/mnt/dir$n"
		D[$n,lsl_w]=$t_secs
		stop_ssefs "$mount_pid" "$d/mnt"
		drop_caches
		start_mount dir "$d/data" "$d/mnt"
		mstarts+=("$mount_start")
		"$helper" statrand "$d/mnt/dir$n" "$n" "$lookups" "$n" >"$run/out"
		D[$n,lc50]=$(get lookup_cold_p50_us "$run/out") D[$n,lc99]=$(get lookup_cold_p99_us "$run/out")
		D[$n,lcm]=$(get lookup_cold_mean_us "$run/out")
		D[$n,lw50]=$(get lookup_warm_p50_us "$run/out") D[$n,lw99]=$(get lookup_warm_p99_us "$run/out")
		stop_ssefs "$mount_pid" "$d/mnt"
		D[hwm]=$hwm
		say "dir: $n: ls -f $(sec "${D[$n,lsf]}"), ls -l $(sec "${D[$n,lsl]}"), lookup p50 $(usf "${D[$n,lc50]}")"
	done
	D[mount]=$(median "${mstarts[@]}")
	echo "## Directories of empty files ($workers parallel creators; each listing and lookup pass after a remount with the page cache dropped)"
	echo
	hdr="| |" sep="| --- |"
	for n in "${dir_sizes[@]}"; do hdr+=" $(num "$n") entries |"; sep+=" ---: |"; done
	echo "$hdr"
	echo "$sep"
	drow() {
		local out="| $1 |" n
		for n in "${dir_sizes[@]}"; do out+=" $($3 "${D[$n,$2]}") |"; done
		echo "$out"
	}
	for n in "${dir_sizes[@]}"; do
		for k in lsf lsf_w lsl lsl_w; do
			D[$n,${k}_pe]=$(awk -v s="${D[$n,$k]}" -v n="$n" 'BEGIN { printf "%.0f", s * 1e6 / n }')
		done
	done
	drow "creates per second" create num
	drow "\`ls -f\` (readdir), cold" lsf sec
	drow "\`ls -f\` per entry, cold" lsf_pe usf
	drow "\`ls -f\`, again (warm)" lsf_w sec
	drow "\`ls -l\` (readdir + stat), cold" lsl sec
	drow "\`ls -l\` per entry, cold" lsl_pe usf
	drow "\`ls -l\`, again (warm)" lsl_w sec
	drow "\`ls -l\` per entry, warm" lsl_w_pe usf
	drow "lstat of $lookups random names, cold, p50" lc50 usf
	drow "… cold, p99" lc99 usf
	drow "… cold, mean" lcm usf
	drow "… same names again (warm), p50" lw50 usf
	drow "… warm, p99" lw99 usf
	echo
	echo "Store with all $(num "$(printf '%s\n' "${dir_sizes[@]}" | awk '{ s += $1 } END { print s }')") entries: Badger $(hb "${D[meta]}"), mount start $(ms "${D[mount]}") (median of ${#mstarts[@]}), ssefs peak RSS $(hb "${D[hwm]}") in the last lookup pass."
	echo
	[ "$keep" = 1 ] || rm -rf "$d"
fi

# --- 3. one bucket with a million files -----------------------------------------------------------
if [ "$do_tree" = 1 ]; then
	declare -A T
	need_space 10 tree
	d="$run/tree"
	say "tree: $(num $tree_total) files of $tree_file bytes in $tree_dirs directories, $workers creators, budget $budget_min min"
	start_mount tree "$d/data" "$d/mnt"
	T[pid]=$mount_pid
	: >"$run/progress"
	: >"$run/tree.out"
	"$helper" tree "$d/mnt" "$tree_dirs" "$tree_per_dir" "$tree_file" "$workers" $((budget_min * 60)) "$tree_every" >>"$run/tree.out" &
	hpid=$!
	pids+=("$hpid")
	seen=0
	while :; do
		alive=0
		kill -0 "$hpid" 2>/dev/null && alive=1
		n=$(awk '/^progress/ { n++ } END { print n + 0 }' "$run/tree.out")
		while [ "$seen" -lt "$n" ]; do
			seen=$((seen + 1))
			echo "$(grep '^progress' "$run/tree.out" | sed -n "${seen}p") $(disk_of "$d/data/meta") $(hwm_of "${T[pid]}")" >>"$run/progress"
		done
		[ "$alive" = 1 ] || break
		sleep 1
	done
	wait "$hpid" || die "tree: the creator failed"
	cp "$run/tree.out" "$run/out"
	T[files]=$(get files "$run/out") T[dirs]=$(get dirs "$run/out")
	T[secs]=$(get create_s "$run/out") T[rate]=$(get create_per_s "$run/out")
	# ssefs (go-fuse) keeps a node per inode the kernel holds; the kernel lets go of them
	# (FORGET) when its caches are dropped
	T[rss]=$(rss_of "$mount_pid")
	drop_caches
	sleep 5
	T[rss_dropped]=$(rss_of "$mount_pid")
	stop_ssefs "$mount_pid" "$d/mnt"
	T[stop]=$stop_secs T[hwm]=$hwm
	T[meta]=$(size_of "$d/data/meta") T[meta_disk]=$(disk_of "$d/data/meta")
	say "tree: ${T[files]} files in ${T[secs]} s; measuring the objects directory"
	T[objs]=$(size_of "$d/data/objects") T[objs_disk]=$(disk_of "$d/data/objects")
	T[nobj]=$(find "$d/data/objects" -type f | wc -l)
	drop_caches
	start_mount tree "$d/data" "$d/mnt"
	T[mount]=$mount_start
	mid=$(printf 'd%04d' $((T[dirs] / 2)))
	timed ls_count -l "$d/mnt/$mid"
	T[lsl]=$t_secs
	"$helper" stat "$d/mnt/$mid/f0500" >"$run/out"
	T[stat]=$(get stat_us "$run/out")
	stop_ssefs "$mount_pid" "$d/mnt"
	drop_caches
	start_mount tree "$d/data" "$d/mnt"
	T[mount2]=$mount_start
	stop_ssefs "$mount_pid" "$d/mnt"

	aws=$(command -v aws || true)
	if [ -z "$aws" ]; then
		say "tree: installing awscli"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli >/dev/null || die "installing awscli failed"
		aws=$(command -v aws) || die "no aws cli"
	fi
	log="$run/logs/serve.log"
	t0=$(now_ns)
	"$ssefs" serve --data-dir "$d/data" --s3-address 127.0.0.1:0 --root-user scale --root-password "scale-$$-secret" 2>>"$log" &
	spid=$!
	pids+=("$spid")
	url=""
	for _ in $(seq 60000); do
		url=$(sed -n 's/^ssefs: S3 API listening on \(http[^ ]*\).*/\1/p' "$log" | head -n1)
		[ -n "$url" ] && break
		kill -0 "$spid" 2>/dev/null || { tail -n 20 "$log" >&2; die "tree: ssefs serve exited (log above)"; }
		sleep 0.01
	done
	[ -n "$url" ] || die "tree: ssefs serve did not start within 10 minutes"
	T[serve]=$(secs "$t0")
	export AWS_ACCESS_KEY_ID=scale AWS_SECRET_ACCESS_KEY="scale-$$-secret" AWS_DEFAULT_REGION=us-east-1
	export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
	# s3list NAME ROUND EXPECTED ARGS...: times one list-objects-v2 (auto-paginating unless
	# --no-paginate), with the server's CPU time, and checks the count it returns
	s3list() {
		local name=$1 round=$2 want=$3 got c0
		shift 3
		c0=$(cpu_of "$spid")
		timed timeout 1800 "$aws" --endpoint-url "$url" s3api list-objects-v2 --bucket bench "$@" --output text
		T[s3cpu_${name}_$round]=$(awk -v a="$c0" -v b="$(cpu_of "$spid")" 'BEGIN { printf "%.2f", b - a }')
		# text output prints the query's value once per page: add them up
		got=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else o = o $i } END { print (o != "" ? o : s + 0) }' "$run/out")
		[ "$got" = "$want" ] || die "tree: list $name returned '$got', expected $want"
		T[s3_${name}_$round]=$t_secs
		say "tree: S3 list $name (round $round): $t_secs s, server CPU ${T[s3cpu_${name}_$round]} s"
	}
	lastdir=$(printf 'd%04d' $((T[dirs] - 1)))
	half=$((tree_per_dir / 2))
	s3queries=(none dir dir_delim root_delim first_page late_page)
	s3round() {
		s3list none "$1" None --prefix nothing-here/ --query 'Contents[0].Key'
		s3list dir "$1" "$tree_per_dir" --prefix "$mid/" --query 'length(Contents)'
		s3list dir_delim "$1" "$tree_per_dir" --prefix "$mid/" --delimiter / --query 'length(Contents)'
		s3list root_delim "$1" "${T[dirs]}" --delimiter / --query 'length(CommonPrefixes)'
		s3list first_page "$1" 1000 --no-paginate --max-keys 1000 --query 'length(Contents)'
		s3list late_page "$1" "$half" --no-paginate --max-keys 1000 --start-after "$lastdir/f$(printf '%04d' $((half - 1)))" --query 'length(Contents)'
	}
	# what the server does on its own right after starting (Badger compactions)
	c0=$(cpu_of "$spid")
	sleep 10
	T[s3idle]=$(awk -v a="$c0" -v b="$(cpu_of "$spid")" 'BEGIN { printf "%.2f", b - a }')
	s3list none 0 None --prefix nothing-here/ --query 'Contents[0].Key' # warms the aws cli up
	s3round 1
	s3list all 1 "${T[files]}" --query 'length(Contents)'
	s3round 2
	stop_ssefs "$spid"

	pages=$(((T[files] + 999) / 1000))
	perfile=$(awk -v b="${T[meta]}" -v n="${T[files]}" 'BEGIN { printf "%.0f", b / n }')
	echo "## One bucket: ${T[dirs]} directories of $tree_per_dir files of $tree_file bytes ($workers parallel creators)"
	echo
	echo "| files | elapsed | files/s over the last $(num "$tree_every") | files/s overall | Badger on disk (allocated, while mounted) | ssefs peak RSS |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
	while read -r _ c el rl ra mb rss; do
		echo "| $(num "$c") | $(sec "$el") | $(num "$rl") | $(num "$ra") | $(hb "$mb") | $(hb "$rss") |"
	done <"$run/progress"
	echo
	echo "| | value |"
	echo "| --- | ---: |"
	echo "| files created | $(num "${T[files]}") in $(num "${T[dirs]}") directories |"
	echo "| create time | $(sec "${T[secs]}") ($(num "${T[rate]}") files/s) |"
	echo "| unmount after creating | $(sec "${T[stop]}") |"
	echo "| ssefs RSS after creating / after drop_caches / peak | $(hb "${T[rss]}") / $(hb "${T[rss_dropped]}") / $(hb "${T[hwm]}") |"
	echo "| Badger (DATA/meta) after unmount | $(hb "${T[meta]}") ($(num "$perfile") bytes per file), $(hb "${T[meta_disk]}") on disk |"
	echo "| objects (DATA/objects) | $(num "${T[nobj]}") files, $(hb "${T[objs]}") apparent, $(hb "${T[objs_disk]}") on disk |"
	echo "| mount start (cold cache) | $(ms "${T[mount]}"), again $(ms "${T[mount2]}") |"
	echo "| \`ls -l\` of one directory of $tree_per_dir, cold | $(sec "${T[lsl]}") |"
	echo "| stat of one file, warm directory | $(usf "${T[stat]}") |"
	echo "| \`ssefs serve\` start | $(ms "${T[serve]}") |"
	echo "| ssefs serve CPU in its first 10 s, idle | ${T[s3idle]} s |"
	if [ "${T[files]}" -lt "$tree_total" ]; then
		f=$(awk -v t="$tree_total" -v n="${T[files]}" 'BEGIN { print t / n }')
		echo "| **extrapolated** to $(num "$tree_total") files (linear, from the $(num "${T[files]}") created) | create $(sec "$(awk -v s="${T[secs]}" -v f="$f" 'BEGIN { print s * f }')"), Badger $(hb "$(awk -v b="${T[meta]}" -v f="$f" 'BEGIN { printf "%.0f", b * f }')") |"
	fi
	echo
	echo "S3 ListObjectsV2 through \`ssefs serve\`, timed around the aws cli (whose own start is the empty-prefix figure), with the CPU time the server spent; round 2 runs after the whole-bucket listing:"
	echo
	echo "| list | round 1 | server CPU | round 2 | server CPU |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	s3label() {
		case "$1" in
		none) echo "empty prefix (aws cli overhead)" ;;
		dir) echo "prefix \`$mid/\` ($(num "$tree_per_dir") keys)" ;;
		dir_delim) echo "prefix \`$mid/\`, delimiter \`/\`" ;;
		root_delim) echo "bucket root, delimiter \`/\` ($(num "${T[dirs]}") prefixes)" ;;
		first_page) echo "first page of 1,000 keys, no prefix" ;;
		late_page) echo "a page in the last directory (start-after)" ;;
		esac
	}
	for q in "${s3queries[@]}"; do
		echo "| $(s3label "$q") | $(sec "${T[s3_${q}_1]}") | ${T[s3cpu_${q}_1]} s | $(sec "${T[s3_${q}_2]}") | ${T[s3cpu_${q}_2]} s |"
	done
	echo "| the whole bucket ($(num "${T[files]}") keys, $(num "$pages") pages) | $(sec "${T[s3_all_1]}") | ${T[s3cpu_all_1]} s | | |"
	echo
	[ "$keep" = 1 ] || rm -rf "$d"
fi

# --- ssefs' stderr -------------------------------------------------------------------------------
echo "## ssefs stderr: lines other than start, stop and the generated-key warning"
echo
odd=$(cat "$run"/logs/*.log 2>/dev/null | grep -v -e '^ssefs: mounted ' -e '^ssefs: WARNING: generated a master key' \
	-e '^ssefs: terminated: ' -e '^ssefs: S3 API listening on ' | sort | uniq -c | sort -rn | head -n 40 || true)
if [ -n "$odd" ]; then
	echo '```'
	echo "$odd"
	echo '```'
else
	echo "(none)"
fi
echo
echo "Total run time: $(sec $(($(date +%s) - started)))."
say "done in $(($(date +%s) - started)) s"
