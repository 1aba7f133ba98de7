package fs

import "sync/atomic"

// cryptoBytes counts plaintext through the content cipher, for metrics. The counters are
// per process, not per engine: there is one engine per process, and sealChunkInto and
// openChunkRange, on the hot path of every write and read, stay free functions that
// cost one atomic add more each.
var cryptoBytes struct {
	encrypted, decrypted atomic.Uint64
}

// CryptoBytes returns how many plaintext bytes this process encrypted into chunk objects
// and decrypted (and authenticated) from them so far. A read decrypts from the start of
// the first DARE package it touches, so decrypted bytes can exceed what reads returned.
func CryptoBytes() (encrypted, decrypted uint64) {
	return cryptoBytes.encrypted.Load(), cryptoBytes.decrypted.Load()
}

// WriteBufferBytes returns the memory held by write-back buffers now (all files), the
// figure Config.WriteBuffer bounds.
func (e *Engine) WriteBufferBytes() int64 { return e.dirtyBytes.Load() }
