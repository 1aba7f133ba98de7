package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
)

// startProfiling serves Go's profiler on SSEFS_DEBUG_PPROF (a loopback HOST:PORT) when
// set: profiles of a live mount under a real workload are what performance work starts
// from, and a benchmark of the engine alone misses the FUSE and kernel side. It is an
// environment variable, not a flag, because it is for developers, never for production:
// heap profiles can hold plaintext and keys.
func startProfiling() error {
	addr := os.Getenv("SSEFS_DEBUG_PPROF")
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("SSEFS_DEBUG_PPROF=%q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("SSEFS_DEBUG_PPROF=%q: the profiler serves memory contents; give a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("SSEFS_DEBUG_PPROF: %w", err)
	}
	// Lock contention is what a serialising path looks like under load.
	runtime.SetMutexProfileFraction(10)
	runtime.SetBlockProfileRate(100_000) // ns: waits of 0.1 ms and more
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go http.Serve(ln, mux)
	return nil
}
