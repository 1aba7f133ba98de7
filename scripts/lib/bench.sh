# shellcheck shell=bash
# Sourced by scripts/bench.sh and scripts/bench_store.sh: the plumbing both benchmarks share
# (flags, results and work directories, cleanup of what a run started, fio, waiting for mounts
# and servers). It only defines functions. They read globals of the script that sources it:
# me (its name, for messages), repo, results_root, workroot, keep and py; bench_setup sets
# the others (stamp, out, run, csv, started).
# shellcheck disable=SC2154 # those globals are the sourcing script's

# usage: the header comment of the script that was run, from line 2 to `set -euo pipefail`.
usage() { sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[-1]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() {
	echo "$me: $*" >&2
	exit 1
}
need_arg() {
	if [ "$#" -lt 2 ] || [ -z "$2" ]; then
		echo "$me: $1 needs a value (see --help)" >&2
		exit 2
	fi
}

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# bench_setup SUFFIX RUN_NAME KIND: the results directory $results_root/<UTC stamp>SUFFIX (out,
# with raw/, logs/ and raw.csv, whose second column is KIND) and the work directory
# $workroot/RUN_NAME.PID (run, with bin/, mnt/ and the pids list of the cleanup).
bench_setup() {
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	out="$results_root/$stamp$1"
	mkdir -p "$out/raw" "$out/logs"
	out=$(cd "$out" && pwd)
	# Everything this run prints also goes to bench.log; tee ignores Ctrl-C so that the cleanup
	# still has somewhere to write.
	exec > >(tee -i -a "$out/bench.log") 2>&1
	mkdir -p "$workroot"
	workroot=$(cd "$workroot" && pwd)
	run="$workroot/$2.$$"
	rm -rf "$run"
	mkdir -p "$run/bin" "$run/mnt"
	: >"$run/pids"
	csv="$out/raw.csv"
	echo "round,$3,metric,value" >"$csv"
	started=$(date +%s)
}

# --- cleanup: every process and mount this run started ------------------------------------------
# Processes started in the background are listed in $run/pids as "PID NAME"; a PID is signalled
# only while /proc/PID/comm still names what was started, so a reused PID is never hit.
ours() { [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }
# bench_cleanup WAIT_S: the EXIT trap (trap 'bench_cleanup N' EXIT): unmount, TERM the processes,
# KILL those still there after WAIT_S seconds, remove the work directory unless --keep, and exit
# with the status the script was exiting with.
bench_cleanup() {
	local rc=$?
	set +e
	trap '' INT TERM PIPE
	local m pid name i left
	for m in "$run"/mnt/*; do
		[ -d "$m" ] && mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
	done
	if [ -s "$run/pids" ]; then
		while read -r pid name; do
			ours "$pid" "$name" && kill -TERM "$pid" 2>/dev/null
		done <"$run/pids"
		for i in $(seq $(($1 * 5))); do
			left=0
			while read -r pid name; do
				ours "$pid" "$name" && left=1
			done <"$run/pids"
			[ "$left" = 0 ] && break
			sleep 0.2
		done
		while read -r pid name; do
			ours "$pid" "$name" && kill -KILL "$pid" 2>/dev/null
		done <"$run/pids"
	fi
	for m in "$run"/mnt/*; do
		[ -d "$m" ] && mountpoint -q "$m" && umount -l "$m" 2>/dev/null
	done
	if [ "$keep" = 1 ]; then
		echo "$me: kept the work directory $run"
	else
		rm -rf "$run"
	fi
	if [ "$rc" -ne 0 ]; then
		echo "$me: FAILED (exit $rc) after $(($(date +%s) - started))s; output so far in $out"
	fi
	exit "$rc"
}

# --- helpers -------------------------------------------------------------------------------------
record() { echo "$1,$2,$3,$4" >>"$csv"; } # record ROUND WHO METRIC VALUE

# cold: write back everything dirty and drop the kernel's page, dentry and inode caches.
cold() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# bg LOG NAME CMD...: start CMD in the background with its output appended to LOG; sets bg_pid.
bg() {
	local log=$1 name=$2
	shift 2
	"$@" >>"$log" 2>&1 &
	bg_pid=$!
	echo "$bg_pid $name" >>"$run/pids"
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_mount MNT PID LOG WHAT: until MNT is mounted; dies (with LOG's tail) if PID, the process
# serving it, exits first or it takes over 60 s.
wait_mount() {
	local i
	for ((i = 0; i < 600; i++)); do
		mountpoint -q "$1" && return 0
		alive "$2" || break
		sleep 0.1
	done
	tail -n 5 "$3" >&2
	die "$4 did not mount at $1 (log: $3)"
}

# unmount MNT [WHAT]: unmount MNT, retrying for 10 s while it is busy; dies if it stays mounted.
unmount() {
	local i
	for ((i = 0; i < 50; i++)); do
		umount "$1" 2>/dev/null && break
		mountpoint -q "$1" || break
		sleep 0.2
	done
	if mountpoint -q "$1"; then
		die "could not unmount ${2:+$2 at }$1"
	fi
}

# wait_http ADDR PID LOG WHAT: until ADDR answers HTTP (any status: 403 for an anonymous request
# means the server is up); dies (with LOG's tail) if PID exits first or it takes over 60 s.
wait_http() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1/" 2>/dev/null)" != 000 ] && return 0
		alive "$2" || break
		sleep 0.1
	done
	tail -n 5 "$3" >&2
	die "$4 did not start (log: $3)"
}

# fio_run TAG NAME ARGS...: runs one fio job (buffered, synchronous psync I/O, the same for every
# peer and store), keeps its JSON in raw/, and sets fio_json to its path.
fio_run() {
	local tag=$1 name=$2
	shift 2
	fio_json="$out/raw/$tag-$name.json"
	fio --output-format=json --output="$fio_json" --name="$name" --ioengine=psync --direct=0 \
		--fallocate=none "$@" >/dev/null
}
# fio_get FIELD: bw_mbps (10^6 bytes/s) or iops of the read or write side of $fio_json.
fio_get() {
	"$py" - "$fio_json" "$1" <<-'EOF'
		import json, sys
		text = open(sys.argv[1]).read()  # fio may print warnings before the JSON
		j = json.loads(text[text.index("{"):])["jobs"][0]
		if j["error"]:
		    sys.exit("fio reported error %d" % j["error"])
		side = j["read"] if j["read"]["io_bytes"] > 0 else j["write"]
		print("%.1f" % (side["bw_bytes"] / 1e6 if sys.argv[2] == "bw_mbps" else side["iops"]))
	EOF
}

# meta_machine: the meta.txt lines on the run, the tree and the machine.
meta_machine() {
	echo "date_utc=$stamp"
	echo "commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	# no optional locks: status must not rewrite the index while others work in the tree
	echo "uncommitted_files=$(GIT_OPTIONAL_LOCKS=0 git -C "$repo" status --porcelain 2>/dev/null | wc -l)"
	echo "kernel=$(uname -r)"
	echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo) x $(nproc)"
	echo "mem_gib=$(awk '/^MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)"
	echo "disk=$(df -hT "$workroot" | awk 'NR==2 {print $1" "$2}')"
}
