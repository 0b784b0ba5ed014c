package mtls

import (
	"fmt"
	"testing"
)

// sessionKeys lists the cache's keys from the most to the least recently
// used, checking the recency chain against the index on the way.
func sessionKeys(t *testing.T, c *sessionCache) []string {
	t.Helper()
	var keys []string
	prev := noSlot
	for i := c.newest; i != noSlot; i = c.slots[i].older {
		if c.slots[i].newer != prev {
			t.Fatalf("slot %d: newer = %d, want %d", i, c.slots[i].newer, prev)
		}
		if j, ok := c.index[c.slots[i].key]; !ok || j != i {
			t.Fatalf("slot %d (%q) is not indexed", i, c.slots[i].key)
		}
		keys = append(keys, c.slots[i].key)
		prev = i
	}
	if c.oldest != prev {
		t.Fatalf("oldest = %d, want %d", c.oldest, prev)
	}
	if len(keys) != len(c.index) {
		t.Fatalf("chain holds %d keys, index %d", len(keys), len(c.index))
	}
	return keys
}

func TestSessionCacheRecency(t *testing.T) {
	c := NewLRUClientSessionCache(3).(*sessionCache)
	st := map[string]*ClientSessionState{}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		st[k] = &ClientSessionState{}
	}
	want := func(keys ...string) {
		t.Helper()
		if got := fmt.Sprint(sessionKeys(t, c)); got != fmt.Sprint(keys) {
			t.Fatalf("cache holds %s, want %s", got, fmt.Sprint(keys))
		}
	}
	c.Put("a", st["a"])
	c.Put("b", st["b"])
	c.Put("c", st["c"])
	want("c", "b", "a")
	if s, ok := c.Get("a"); !ok || s != st["a"] {
		t.Fatal("Get(a) lost the session")
	}
	want("a", "c", "b")
	c.Put("d", st["d"]) // full: evicts b, the least recently used
	want("d", "a", "c")
	if _, ok := c.Get("b"); ok {
		t.Fatal("evicted session still found")
	}
	c.Put("c", st["e"]) // replacing counts as a use
	want("c", "d", "a")
	if s, _ := c.Get("c"); s != st["e"] {
		t.Fatal("Put did not replace the session")
	}
	c.Put("d", nil) // forgets d; its slot is reused without an eviction
	want("c", "a")
	c.Put("x", nil) // forgetting an unknown key changes nothing
	want("c", "a")
	c.Put("e", st["e"])
	want("e", "c", "a")
	if len(c.slots) != 3 {
		t.Fatalf("%d slots for a capacity of 3", len(c.slots))
	}
	for _, k := range []string{"e", "c", "a"} {
		c.Put(k, nil)
	}
	want()
	c.Put("a", st["a"])
	want("a")
}

func TestSessionCacheDefaultCapacity(t *testing.T) {
	c := NewLRUClientSessionCache(0).(*sessionCache)
	for i := 0; i < 100; i++ {
		c.Put(fmt.Sprint(i), &ClientSessionState{})
	}
	keys := sessionKeys(t, c)
	if len(keys) != 64 || keys[0] != "99" || keys[63] != "36" {
		t.Fatalf("default cache kept %d keys, %s … %s", len(keys), keys[0], keys[len(keys)-1])
	}
}
