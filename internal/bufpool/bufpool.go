// Package bufpool lends byte buffers to the ingest path, where every
// message used to allocate its request body, its queue payload and its
// events' JSON afresh, only to drop them a moment later.
package bufpool

import (
	"bytes"
	"encoding/json"
	"sync"
)

// maxKept is the largest buffer the pool keeps: a rare large e-mail must
// not pin its size in the pool for ever.
const maxKept = 64 << 10

var pool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Get returns an empty buffer. Give it back with Put once nothing reads
// it, or drop it.
func Get() *bytes.Buffer {
	return pool.Get().(*bytes.Buffer)
}

// Put returns b to the pool; the caller must not use b, or any slice of
// its bytes, afterwards.
func Put(b *bytes.Buffer) {
	if b == nil || b.Cap() > maxKept {
		return
	}
	b.Reset()
	pool.Put(b)
}

// PutBytes returns the memory of p, the Bytes of a buffer from Get, to the
// pool: for bytes that outlived their buffer's variable.
func PutBytes(p []byte) {
	if cap(p) == 0 {
		return
	}
	Put(bytes.NewBuffer(p[:0]))
}

// JSON returns v's JSON, as json.Marshal writes it, in a buffer from Get.
func JSON(v any) (*bytes.Buffer, error) {
	b := Get()
	if err := json.NewEncoder(b).Encode(v); err != nil {
		Put(b)
		return nil, err
	}
	b.Truncate(b.Len() - 1) // the newline Encode adds
	return b, nil
}
