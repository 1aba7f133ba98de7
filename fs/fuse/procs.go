package fuse

import (
	"os"
	"runtime"
	"sync"
)

// go-fuse reads requests with blocking read(2)s on /dev/fuse, from up to maxReaders+1
// goroutines at once (maxReaders is GOMAXPROCS when the server starts, between 2 and 16),
// and a goroutine blocked in a system call keeps its P, the runtime's slot to run Go
// code. On a small machine the idle readers hold every P: GOMAXPROCS is 2 on two cores,
// and up to three readers wait. Whatever a request handler hands to another goroutine
// (every Badger commit goes through Badger's writer goroutine and back, and its
// watermark goroutines) then has no P to run on until sysmon takes one back from a
// reader, which it polls for every 20 µs as long as that keeps happening: a commit
// waits for it at least twice, and sysmon's polling alone was 8% of the mount's CPU
// while deleting small files (perf, 5,000 unlinks after ls -lR, 2 cores). With the
// extra Ps, sysmon's share fell to 2% and unlinks got 14-26% faster. gocryptfs, whose
// handlers make plain system calls and hand nothing to other goroutines, hardly notices.
//
// So each mount adds as many Ps as its readers can hold, once go-fuse has sized its
// reader pool: the readers camp on those, and the cores' worth of Ps stays free for
// work. Idle Ps cost nothing; the Go code running at once is still bounded by what the
// readers leave, and by the cores. An explicit GOMAXPROCS in the environment is left
// alone.
var readerProcs struct {
	mu     sync.Mutex
	base   int // GOMAXPROCS before the first mount
	mounts int
}

// maxReaderProcs bounds the Ps added for all mounts of one process together.
const maxReaderProcs = 64

// readersOf is how many go-fuse readers of one server can block in read(2) at once, for
// the GOMAXPROCS the server started with (go-fuse's fuseFD.readRequest).
func readersOf(procs int) int { return min(max(procs, 2), 16) + 1 }

// reserveReaderProcs adds a mount's readers to GOMAXPROCS; call it once the server is
// up, and the function it returns once the server has stopped.
func reserveReaderProcs() (release func()) {
	if os.Getenv("GOMAXPROCS") != "" {
		return func() {}
	}
	readerProcs.mu.Lock()
	defer readerProcs.mu.Unlock()
	if readerProcs.mounts == 0 {
		readerProcs.base = runtime.GOMAXPROCS(0)
	}
	readerProcs.mounts++
	setReaderProcs()
	var once sync.Once
	return func() {
		once.Do(func() {
			readerProcs.mu.Lock()
			defer readerProcs.mu.Unlock()
			readerProcs.mounts--
			setReaderProcs()
		})
	}
}

// setReaderProcs sets GOMAXPROCS for the mounts there are. Must hold readerProcs.mu.
func setReaderProcs() {
	extra := min(readerProcs.mounts*readersOf(readerProcs.base), maxReaderProcs)
	runtime.GOMAXPROCS(readerProcs.base + extra)
}
