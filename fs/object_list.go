package fs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/ssefs/ssefs/meta"
)

// MaxListKeys bounds one ListObjects page, as S3 does.
const MaxListKeys = 1000

// ListOptions select a page of a bucket's keys.
type ListOptions struct {
	Prefix    string
	Delimiter string
	// After is exclusive: only keys (and common prefixes) sorting after it are listed.
	// It is the V1 marker, the V2 start-after, or a continuation (ListResult.Next).
	After string
	// MaxKeys bounds objects plus common prefixes (1..MaxListKeys; 0 or more = MaxListKeys).
	MaxKeys int
}

// ListResult is one page of keys.
type ListResult struct {
	// Objects in S3 order (bytewise over the full key). Their UserMeta and encryption
	// fields are left empty (S3 listings do not show them; StatObject does).
	Objects        []ObjectInfo
	CommonPrefixes []string
	// Truncated says more follow; Next (set only then) is the last key or common prefix
	// of this page, the After of the next.
	Truncated bool
	Next      string
}

var errListFull = errors.New("list page full")

type lister struct {
	e      *Engine
	tx     *meta.Tx
	bucket string
	opt    ListOptions
	max    int
	n      int
	lastCP string
	res    *ListResult
}

// ListObjects lists a bucket's keys in S3's order: bytewise over full keys, so a
// directory "a" sorts as "a/" (after "a-c" and "a.txt", before "a0"). Objects are the
// regular files and the directory markers "dir/" (see isMarkerDir: "dir/" PUTs, and
// empty directories made through the mount, as MinIO shows them);
// symlinks, FIFOs, sockets and devices are skipped. The walk is one consistent
// snapshot and descends only into directories that can hold keys after After and
// matching Prefix; a directory whose keys all roll up into one common prefix is not
// descended into (only checked for holding any key).
func (e *Engine) ListObjects(ctx context.Context, bucket string, opt ListOptions) (ListResult, error) {
	max := opt.MaxKeys
	if max <= 0 || max > MaxListKeys {
		max = MaxListKeys
	}
	var res ListResult
	err := e.view(func(tx *meta.Tx) error {
		res = ListResult{}
		b, err := s3Bucket(tx, bucket)
		if err != nil {
			return err
		}
		l := &lister{e: e, tx: tx, bucket: bucket, opt: opt, max: max, res: &res}
		if err := l.walk(b.Ino, ""); err != nil && !errors.Is(err, errListFull) {
			return err
		}
		return ctx.Err()
	})
	if err != nil {
		return ListResult{}, fmt.Errorf("list %s: %w", bucket, err)
	}
	if !res.Truncated {
		res.Next = ""
	}
	return res, nil
}

// take counts one item into the page; when the page is already full, finding one more
// item proves the listing truncated.
func (l *lister) take(item string) error {
	if l.n == l.max {
		l.res.Truncated = true
		return errListFull
	}
	l.n++
	l.res.Next = item
	return nil
}

// add lists one object key, or the common prefix it rolls up into.
func (l *lister) add(key string, in meta.Inode) error {
	if key <= l.opt.After || !strings.HasPrefix(key, l.opt.Prefix) {
		return nil
	}
	if cp, ok := l.rollup(key); ok {
		return l.addCP(cp)
	}
	if err := l.take(key); err != nil {
		return err
	}
	info, err := l.e.baseInfo(l.tx, l.bucket, key, in, l.e.openState(uint64(in.Ino)))
	if err != nil {
		return err
	}
	l.res.Objects = append(l.res.Objects, info)
	return nil
}

func (l *lister) addCP(cp string) error {
	if cp <= l.opt.After || cp == l.lastCP {
		return nil
	}
	if err := l.take(cp); err != nil {
		return err
	}
	l.lastCP = cp
	l.res.CommonPrefixes = append(l.res.CommonPrefixes, cp)
	return nil
}

// rollup returns the common prefix that s (a key, or a directory's "d/" key prefix
// that all its keys share) rolls up into, if the delimiter occurs in s after Prefix.
func (l *lister) rollup(s string) (string, bool) {
	d := l.opt.Delimiter
	if d == "" || !strings.HasPrefix(s, l.opt.Prefix) {
		return "", false
	}
	rest := s[len(l.opt.Prefix):]
	i := strings.Index(rest, d)
	if i < 0 {
		return "", false
	}
	return l.opt.Prefix + rest[:i+len(d)], true
}

// dirRelevant tells whether a directory whose keys all start with full ("a/b/") can
// hold a key this page lists.
func (l *lister) dirRelevant(full string) bool {
	p, after := l.opt.Prefix, l.opt.After
	if !strings.HasPrefix(full, p) && !strings.HasPrefix(p, full) {
		return false
	}
	if after > full && !strings.HasPrefix(after, full) {
		return false // every key under it sorts before After
	}
	if l.lastCP != "" && strings.HasPrefix(full, l.lastCP) {
		return false // all its keys roll up into the prefix already listed
	}
	return true
}

// seek returns the first name worth reading in a directory whose keys start with base,
// and the name prefix every relevant entry has ("" = any).
func (l *lister) seek(base string) (start, need string) {
	if rp, ok := strings.CutPrefix(l.opt.Prefix, base); ok && rp != "" {
		need, start = rp, rp
		if i := strings.IndexByte(rp, '/'); i >= 0 {
			// Only the directory rp[:i] can hold matching keys.
			need, start = rp[:i], rp[:i]
		}
	}
	if r, ok := strings.CutPrefix(l.opt.After, base); ok && r != "" {
		s := r
		if i := strings.IndexByte(s, '/'); i >= 0 {
			s = s[:i]
		}
		// A directory d sorts as "d/": one whose name is a prefix of s followed by a
		// byte below '/' still sorts after s, so start at the shortest such prefix.
		for i := 1; i < len(s); i++ {
			if s[i] < '/' {
				s = s[:i]
				break
			}
		}
		start = max(start, s)
	}
	return start, need
}

type pendingEntry struct {
	eff string // the name as it sorts: "d/" for a directory
	ent meta.Entry
}

// walk lists the keys under directory dir, whose keys start with base.
func (l *lister) walk(dir meta.Ino, base string) error {
	start, need := l.seek(base)
	onlyDir := strings.Contains(strings.TrimPrefix(l.opt.Prefix, base), "/") && strings.HasPrefix(l.opt.Prefix, base)
	// Entries come in name order; a directory is emitted where "name/" sorts, so hold
	// entries until the next name read proves nothing can sort before them (every
	// later entry sorts at or after its own name).
	var pending []pendingEntry
	flush := func(bound string, all bool) error {
		for len(pending) > 0 && (all || pending[0].eff < bound) {
			p := pending[0]
			pending = pending[1:]
			if err := l.visit(base, p.ent); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	scanErr := l.tx.EntriesFrom(dir, start, func(ent meta.Entry) bool {
		if need != "" && !strings.HasPrefix(ent.Name, need) {
			return false // past every name with the prefix
		}
		if onlyDir && ent.Name != need {
			return false
		}
		if err = flush(ent.Name, false); err != nil {
			return false
		}
		eff := ent.Name
		if isDirMode(ent.Mode) {
			eff += "/"
		}
		i := len(pending)
		for i > 0 && pending[i-1].eff > eff {
			i--
		}
		pending = append(pending, pendingEntry{})
		copy(pending[i+1:], pending[i:])
		pending[i] = pendingEntry{eff: eff, ent: ent}
		return true
	})
	if err != nil {
		return err
	}
	if scanErr != nil {
		return scanErr
	}
	return flush("", true)
}

// visit lists one entry of a directory whose keys start with base.
func (l *lister) visit(base string, ent meta.Entry) error {
	key := base + ent.Name
	switch ent.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		if key <= l.opt.After || !strings.HasPrefix(key, l.opt.Prefix) {
			return nil
		}
		in, err := l.tx.Inode(ent.Ino)
		if err != nil {
			return err
		}
		return l.add(key, in)
	case syscall.S_IFDIR:
		full := key + "/"
		if !l.dirRelevant(full) {
			return nil
		}
		if cp, ok := l.rollup(full); ok {
			if cp <= l.opt.After || cp == l.lastCP {
				return nil
			}
			has, err := l.hasKeys(ent.Ino)
			if err != nil || !has {
				return err
			}
			return l.addCP(cp)
		}
		marker, err := isMarkerDir(l.tx, ent.Ino)
		if err != nil {
			return err
		}
		if marker {
			in, err := l.tx.Inode(ent.Ino)
			if err != nil {
				return err
			}
			if err := l.add(full, in); err != nil {
				return err
			}
		}
		return l.walk(ent.Ino, full)
	}
	return nil // symlinks, FIFOs, sockets, devices are not objects
}

// hasKeys tells whether a directory holds any key (itself as a marker included).
func (l *lister) hasKeys(ino meta.Ino) (bool, error) {
	if marker, err := isMarkerDir(l.tx, ino); err != nil || marker {
		return marker, err
	}
	found := false
	var err error
	scanErr := l.tx.Entries(ino, "", func(ent meta.Entry) bool {
		switch ent.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			found = true
		case syscall.S_IFDIR:
			found, err = l.hasKeys(ent.Ino)
		}
		return !found && err == nil
	})
	if err == nil {
		err = scanErr
	}
	return found, err
}
