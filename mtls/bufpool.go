package mtls

import (
	"sync"
	"sync/atomic"
)

// Record buffers come from package-level pools and go back as soon as a
// connection has nothing buffered: an idle connection holds no record
// buffer at all (see readBuffer.release and writeBuffer.release). The pools hold
// *[]byte so that Get and Put do not allocate.
//
// Size classes:
//
//	smallBufLen   handshakes, small records
//	recordBufLen  one full record (plaintext, or one sealed record)
//	rawBufLen     raw input (two full records), or two sealed records
//	batchBufLen   maxWriteBatch sealed records
const (
	recordBufLen = recordHeaderLen + maxCiphertext
	batchBufLen  = recordHeaderLen + maxSealOverhead + maxWriteBatch*(maxPlaintext+recordHeaderLen+maxSealOverhead)
)

var bufClasses = [...]int{smallBufLen, recordBufLen, rawBufLen, batchBufLen}

var bufPools [len(bufClasses)]sync.Pool

func init() {
	for i, size := range bufClasses {
		bufPools[i].New = func() any { b := make([]byte, size); return &b }
	}
}

// bufClass returns the index of the smallest class holding n bytes.
func bufClass(n int) int {
	for i, size := range bufClasses {
		if n <= size {
			return i
		}
	}
	panic("mtls: record buffer request too large")
}

// getBuf returns a pooled buffer of at least n bytes (len == cap == its
// class size).
func getBuf(n int) *[]byte {
	pooledOut.Add(1)
	return bufPools[bufClass(n)].Get().(*[]byte)
}

// pooledOut counts the pooled buffers taken and not yet returned (buffers
// of closed connections are left to the garbage collector and stay
// counted); tests use it to see what a blocked connection holds.
var pooledOut atomic.Int64

// putBuf returns bp to its pool after zeroing its first used bytes: pooled
// buffers are shared by every connection, and whatever a connection left in
// one must not be readable by the next user.
func putBuf(bp *[]byte, used int) {
	pooledOut.Add(-1)
	b := *bp
	clear(b[:min(used, len(b))])
	bufPools[bufClass(cap(b))].Put(bp)
}
