package keys

import (
	"context"
	"time"
)

// KMSOp is a KMS call, as an Observer sees it.
type KMSOp uint8

// The KMS calls a Sealer makes.
const (
	KMSGenerateKey KMSOp = iota
	KMSDecrypt
	// NumKMSOps is the number of calls: KMSOp values are 0 to NumKMSOps-1.
	NumKMSOps
)

func (o KMSOp) String() string {
	switch o {
	case KMSGenerateKey:
		return "generate_key"
	case KMSDecrypt:
		return "decrypt"
	}
	return "unknown"
}

// Observer is told of a Sealer's KMS calls (with their error: the package's Err* values
// say why one failed) and of its key-cache lookups, for metrics. It is never given a key.
// Calls come from many goroutines; a cache lookup is on the path of every file opened or
// created, so KeyCache must be cheap.
type Observer interface {
	KMSCall(op KMSOp, start time.Time, err error)
	KeyCache(hit bool)
}

// Observe makes s report its KMS calls and key-cache lookups to o, and so do the Sealers
// Fork makes from it. Call it before s is used.
func (s *Sealer) Observe(o Observer) {
	s.obs = o
	s.kms = observedKMS{kms: s.kms, o: o}
}

func (s *Sealer) observeCache(hit bool) {
	if s.obs != nil {
		s.obs.KeyCache(hit)
	}
}

// observedKMS times the calls of the KMS it wraps. It sits between the Sealer and the
// KMS rather than in each client, so static keys, KES and Vault are measured alike.
type observedKMS struct {
	kms KMS
	o   Observer
}

func (k observedKMS) GenerateKey(ctx context.Context, name string, kctx Context) (DEK, error) {
	start := time.Now()
	d, err := k.kms.GenerateKey(ctx, name, kctx)
	k.o.KMSCall(KMSGenerateKey, start, err)
	return d, err
}

func (k observedKMS) Decrypt(ctx context.Context, name string, ciphertext []byte, kctx Context) ([]byte, error) {
	start := time.Now()
	p, err := k.kms.Decrypt(ctx, name, ciphertext, kctx)
	k.o.KMSCall(KMSDecrypt, start, err)
	return p, err
}
