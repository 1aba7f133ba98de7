package meta

import "fmt"

// AllChunks visits every chunk record of every inode, in (inode, index) order, whether or
// not the inode exists. It is one pass over the chunk key range, for whole-store totals
// ('ssefs df'): walking inode by inode with Chunks would start an iterator per file.
func (tx *Tx) AllChunks(fn func(ino Ino, c Chunk) bool) error {
	err := tx.scan([]byte{pfxChunk}, nil, false, func(k, v []byte) (bool, error) {
		ino, idx, err := decodeChunkKey(k)
		if err != nil {
			return false, err
		}
		c, err := decodeChunk(idx, v)
		if err != nil {
			return false, fmt.Errorf("inode %d chunk %d: %w", ino, idx, err)
		}
		return fn(ino, c), nil
	})
	return wrap(err, "chunks")
}
