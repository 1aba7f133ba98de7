package integration

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sync"
	"testing"
)

// TestConcurrentFiles: 8 goroutines, each writing its own file in random-sized pieces with
// occasional fsyncs, while reading back what they wrote.
func TestConcurrentFiles(t *testing.T) {
	m := StartMount(t, newConfig(t))
	seed := rng(t).Uint64()
	const workers = 8
	want := make([][]byte, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(seed, uint64(w)))
			size := 2*ChunkSize + r.IntN(2*ChunkSize)
			data := randBytes(r, size)
			want[w] = data
			f, err := os.Create(m.P(fmt.Sprintf("worker-%d", w)))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for off := 0; off < size; {
				n := min(size-off, 1+r.IntN(300<<10))
				if _, err := f.Write(data[off : off+n]); err != nil {
					errs <- fmt.Errorf("worker %d: write at %d: %w", w, off, err)
					return
				}
				off += n
				if r.IntN(8) == 0 {
					if err := f.Sync(); err != nil {
						errs <- fmt.Errorf("worker %d: fsync: %w", w, err)
						return
					}
				}
				// Read back a random earlier range through the same fd.
				ro := r.IntN(off)
				rl := min(off-ro, 1+r.IntN(64<<10))
				buf := make([]byte, rl)
				if _, err := f.ReadAt(buf, int64(ro)); err != nil {
					errs <- fmt.Errorf("worker %d: pread %d at %d: %w", w, rl, ro, err)
					return
				}
				if string(buf) != string(data[ro:ro+rl]) {
					errs <- fmt.Errorf("worker %d: pread %d at %d returned other bytes than written", w, rl, ro)
					return
				}
			}
			if err := f.Close(); err != nil {
				errs <- fmt.Errorf("worker %d: close: %w", w, err)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := 0; w < workers; w++ {
		assertContent(t, m.P(fmt.Sprintf("worker-%d", w)), want[w])
	}
	m = m.Restart(t)
	for w := 0; w < workers; w++ {
		assertContent(t, m.P(fmt.Sprintf("worker-%d", w)), want[w])
	}
}

// TestConcurrentPwriteOneFile: 4 goroutines write disjoint regions of one file with pwrite,
// in random order and pieces. The region borders are not chunk-aligned, so neighbours share
// chunks. Once with one fd per goroutine, once with a single shared fd.
func TestConcurrentPwriteOneFile(t *testing.T) {
	m := StartMount(t, newConfig(t))
	seed := rng(t).Uint64()
	for _, shared := range []bool{false, true} {
		name := fmt.Sprintf("shared-fd-%v", shared)
		const writers = 4
		region := 2*ChunkSize + 333 // borders fall inside chunks
		size := writers * region
		r0 := mrand.New(mrand.NewPCG(seed, 99))
		want := randBytes(r0, size)

		var sharedF *os.File
		if shared {
			f, err := os.Create(m.P(name))
			must(t, err, "create")
			sharedF = f
		} else {
			writeFile(t, m.P(name), nil, 0o644)
		}
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := mrand.New(mrand.NewPCG(seed, uint64(100+w)))
				f := sharedF
				if f == nil {
					var err error
					if f, err = os.OpenFile(m.P(name), os.O_WRONLY, 0); err != nil {
						errs <- err
						return
					}
					defer f.Close()
				}
				// Cut the region into pieces and write them in a random order.
				start, end := w*region, (w+1)*region
				type piece struct{ off, n int }
				var pieces []piece
				for off := start; off < end; {
					n := min(end-off, 1+r.IntN(200<<10))
					pieces = append(pieces, piece{off, n})
					off += n
				}
				r.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
				for i, p := range pieces {
					if _, err := f.WriteAt(want[p.off:p.off+p.n], int64(p.off)); err != nil {
						errs <- fmt.Errorf("writer %d: pwrite %d at %d: %w", w, p.n, p.off, err)
						return
					}
					if i%10 == 9 && sharedF == nil {
						if err := f.Sync(); err != nil {
							errs <- fmt.Errorf("writer %d: fsync: %w", w, err)
							return
						}
					}
				}
				if sharedF == nil {
					if err := f.Close(); err != nil {
						errs <- fmt.Errorf("writer %d: close: %w", w, err)
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", name, err)
		}
		if sharedF != nil {
			must(t, sharedF.Close(), "close")
		}
		assertContent(t, m.P(name), want)
		dropPageCache(t, m.P(name))
		assertContent(t, m.P(name), want)
	}
	m = m.Restart(t)
	r0 := mrand.New(mrand.NewPCG(seed, 99))
	want := randBytes(r0, 4*(2*ChunkSize+333))
	for _, shared := range []bool{false, true} {
		assertContent(t, m.P(fmt.Sprintf("shared-fd-%v", shared)), want)
	}
}
