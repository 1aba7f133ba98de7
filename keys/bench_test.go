package keys

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Benchmarks of sealing and unsealing per-file keys with the static master key (no
// network KMS): every file create seals an OEK, every open unseals one. With a TTL the
// data key comes from the Sealer's cache (the mount's default, --key-cache-ttl 5m); with
// none every call asks the KMS (here: a local AES-GCM open). Run with -benchmem.

func benchSealer(b *testing.B, ttl time.Duration) *Sealer {
	b.Helper()
	master, err := GenerateMasterKey("bench-key")
	if err != nil {
		b.Fatal(err)
	}
	return NewSealer(master, master.Name(), ttl)
}

// BenchmarkSealerSeal seals a new file's OEK (SSE-S3 under the default key).
func BenchmarkSealerSeal(b *testing.B) {
	for _, ttl := range []time.Duration{5 * time.Minute, 0} {
		b.Run(fmt.Sprintf("cache-ttl-%s", ttl), func(b *testing.B) {
			s := benchSealer(b, ttl)
			ctx := context.Background()
			fileID, oek := NewFileID(), NewOEK()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Seal(ctx, SSES3, "", "bucket", fileID, oek); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealerUnseal unseals a file's OEK from its marshalled record, as opening a
// file does (the record's decoding included).
func BenchmarkSealerUnseal(b *testing.B) {
	for _, ttl := range []time.Duration{5 * time.Minute, 0} {
		b.Run(fmt.Sprintf("cache-ttl-%s", ttl), func(b *testing.B) {
			s := benchSealer(b, ttl)
			ctx := context.Background()
			fileID, oek := NewFileID(), NewOEK()
			k, err := s.Seal(ctx, SSES3, "", "bucket", fileID, oek)
			if err != nil {
				b.Fatal(err)
			}
			rec, err := k.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				var sk SealedKey
				if err := sk.UnmarshalBinary(rec); err != nil {
					b.Fatal(err)
				}
				got, err := s.Unseal(ctx, sk, fileID)
				if err != nil || got != oek {
					b.Fatalf("unseal: %v", err)
				}
			}
		})
	}
}
