package pairing

import "sync"

// cache is a small bounded map of PUBLIC values derived from identities
// (A, A' = A + T_d, the Miller-loop lines of B_C), so that servers do not
// hash the same identity again on every handshake. When full it drops an
// arbitrary entry, so a peer cycling through identities costs only its own
// hashing. Safe for concurrent use.
type cache[V any] struct {
	mu  sync.Mutex
	m   map[string]V
	max int
}

func newCache[V any](max int) *cache[V] { return &cache[V]{m: make(map[string]V), max: max} }

// get returns the value for key, computing and storing it if absent.
func (c *cache[V]) get(key string, compute func() V) V {
	c.mu.Lock()
	v, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = compute()
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = v
	c.mu.Unlock()
	return v
}

// reset empties the cache (benchmarks of the cold path).
func (c *cache[V]) reset() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// Cache sizes: a G1 point is 144 bytes (a CS entry with its comb table,
// built for identities proven twice a day, about 3.2 KB: 13 MB at most), the
// lines of a G2 point 19.6 KB.
const (
	csCacheSize  = 4096
	p2pCacheSize = 256
)
