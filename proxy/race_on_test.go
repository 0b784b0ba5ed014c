//go:build race

package proxy

// raceEnabled: the race detector makes sync.Pool drop a share of the
// buffers put back, so pooled buffers are allocated again at random.
const raceEnabled = true
