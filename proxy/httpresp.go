package proxy

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Response tracking (HTTP identity mode). The request side may stop parsing
// - and forward the client's bytes opaquely - only once the target has
// switched protocols: a 101 to an Upgrade request, a 2xx to a CONNECT. A
// target that refuses keeps reading HTTP, so the client's next bytes must be
// parsed (and their identity header rewritten) as usual. The response
// stream (target → client) is therefore followed too: it is forwarded
// untouched, byte for byte, while a framing parser finds where each
// response ends (RFC 9112 §6.3) and matches responses to requests in order.
//
// The parser is only an observer and fails safe: when it cannot follow the
// stream (malformed response, a response with no request, a head over
// maxHeaderBytes, a body delimited by the close of the connection) it stops
// parsing, keeps forwarding, and no switch is ever confirmed again, so the
// request side never goes opaque afterwards.

// Request kinds, as bits.
const (
	reqHead    = 1 << iota // HEAD: the response has no body
	reqUpgrade             // Upgrade + Connection: upgrade
	reqConnect             // CONNECT
)

// maxPipelined bounds the requests awaiting a response; the request side
// waits for responses beyond that.
const maxPipelined = 1024

// httpExchange is shared by both directions of one connection.
type httpExchange struct {
	// refuseConnect, if set, answers a CONNECT itself instead of
	// forwarding it (HTTP identity mode without --allow-connect).
	refuseConnect func() error

	mu      sync.Mutex
	cond    sync.Cond
	q       []uint8 // kinds of requests awaiting a final response, oldest first
	head    int     // q[head:] is the queue
	verdict int8    // for the outstanding Upgrade/CONNECT: 0 pending, 1 switched, -1 refused
	done    bool    // no verdict will come any more (stream ended or lost track)
}

func newHTTPExchange() *httpExchange {
	x := &httpExchange{}
	x.cond.L = &x.mu
	return x
}

// push records a request about to be sent to the target (before any of it
// is written, so its response cannot be seen first).
func (x *httpExchange) push(kind uint8) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for !x.done && len(x.q)-x.head >= maxPipelined {
		x.cond.Wait()
	}
	if kind&(reqUpgrade|reqConnect) != 0 {
		x.verdict = 0
		if x.done {
			x.verdict = -1
		}
	}
	if !x.done {
		x.q = append(x.q, kind)
	}
}

// awaitSwitch waits for the final response to the Upgrade or CONNECT
// request pushed last and reports whether the target switched protocols.
func (x *httpExchange) awaitSwitch() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	for x.verdict == 0 && !x.done {
		x.cond.Wait()
	}
	return x.verdict > 0
}

// waitIdle waits until every request sent has had its final response (or
// tracking stopped).
func (x *httpExchange) waitIdle() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for !x.done && x.head != len(x.q) {
		x.cond.Wait()
	}
}

// front returns the kind of the oldest request awaiting a response.
func (x *httpExchange) front() (uint8, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.head == len(x.q) {
		return 0, false
	}
	return x.q[x.head], true
}

// pop removes the oldest request after its final response; switched tells
// whether that response switched protocols.
func (x *httpExchange) pop(switched bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.head == len(x.q) {
		return
	}
	if x.q[x.head]&(reqUpgrade|reqConnect) != 0 {
		x.verdict = -1
		if switched {
			x.verdict = 1
		}
	}
	x.head++
	if x.head == len(x.q) {
		x.q, x.head = x.q[:0], 0
		if cap(x.q) > 64 {
			x.q = nil // after a burst of pipelining
		}
	}
	x.cond.Broadcast()
}

// stop ends tracking: no switch is confirmed any more and every waiter is
// released.
func (x *httpExchange) stop() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.done {
		x.done = true
		if x.verdict == 0 {
			x.verdict = -1
		}
		x.q, x.head = nil, 0
	}
	x.cond.Broadcast()
}

// Parser states.
const (
	rsStatus    = iota // reading the status line
	rsHeaders          // reading header lines
	rsBody             // Content-Length body: remain bytes left
	rsChunkSize        // reading a chunk-size line
	rsChunkData        // chunk data: remain bytes left
	rsChunkEnd         // the CRLF after chunk data
	rsTrailer          // trailer lines
	rsOpaque           // not parsed any more (switched, until close, or lost)
)

// maxChunkLine bounds a chunk-size line (with extensions), as net/http does.
const maxChunkLine = 4 << 10

// respTracker follows the response stream. It implements io.Writer: every
// chunk is written unchanged to w, then parsed, so that a request counts as
// answered (waitIdle) only once its whole response has reached the client
// and a 405 written then cannot overtake it. It holds no buffer between
// writes except the part of a line split across them (bounded).
type respTracker struct {
	w io.Writer
	x *httpExchange

	state  int
	line   []byte // partial line carried across writes
	used   int    // bytes of the current head (or trailer) so far
	remain int64  // body or chunk bytes left

	// Current response.
	status     int
	kind       uint8
	clen       int64 // -1 if none
	chunked    bool
	untilClose bool // Transfer-Encoding without chunked last
	bad        bool

	responses int // final responses seen (tests)
}

func newRespTracker(w io.Writer, x *httpExchange) *respTracker {
	return &respTracker{w: w, x: x}
}

func (r *respTracker) Write(b []byte) (int, error) {
	n, err := r.w.Write(b)
	r.parse(b[:n])
	return n, err
}

// lose gives up following the stream.
func (r *respTracker) lose() {
	r.state = rsOpaque
	r.line = nil
	r.x.stop()
}

// parse consumes b, updating the state.
func (r *respTracker) parse(b []byte) {
	for len(b) > 0 && r.state != rsOpaque {
		switch r.state {
		case rsBody, rsChunkData:
			n := int64(len(b))
			if n > r.remain {
				n = r.remain
			}
			r.remain -= n
			b = b[n:]
			if r.remain == 0 {
				if r.state == rsBody {
					r.endResponse()
				} else {
					r.state = rsChunkEnd
				}
			}
			continue
		}
		// Line-oriented states.
		limit := maxHeaderBytes - r.used
		if r.state == rsChunkSize || r.state == rsChunkEnd {
			limit = maxChunkLine
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(r.line)+len(b) > limit {
				r.lose()
				return
			}
			r.line = append(r.line, b...)
			return
		}
		if len(r.line)+i+1 > limit {
			r.lose()
			return
		}
		var line []byte
		if len(r.line) > 0 {
			r.line = append(r.line, b[:i+1]...)
			line = r.line
		} else {
			line = b[:i+1]
		}
		b = b[i+1:]
		if r.state != rsChunkSize && r.state != rsChunkEnd {
			r.used += len(line)
		}
		r.handleLine(trimEOL(line))
		r.line = nil // a line split across reads is rare: hold nothing while idle
	}
}

func trimEOL(l []byte) []byte {
	l = l[:len(l)-1]
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	return l
}

func (r *respTracker) handleLine(l []byte) {
	switch r.state {
	case rsStatus:
		kind, ok := r.x.front()
		if !ok {
			r.lose() // a response to no request
			return
		}
		status, ok := parseStatusLine(l)
		if !ok {
			r.lose()
			return
		}
		r.status, r.kind = status, kind
		r.clen, r.chunked, r.untilClose, r.bad = -1, false, false, false
		r.state = rsHeaders
	case rsHeaders:
		if len(l) == 0 {
			r.endHead()
			return
		}
		r.header(l)
	case rsChunkSize:
		n, ok := parseChunkSize(l)
		if !ok {
			r.lose()
			return
		}
		if n == 0 {
			r.state, r.used = rsTrailer, 0
			return
		}
		r.remain, r.state = n, rsChunkData
	case rsChunkEnd:
		if len(l) != 0 {
			r.lose()
			return
		}
		r.state = rsChunkSize
	case rsTrailer:
		if len(l) == 0 {
			r.endResponse()
		}
	}
}

// parseStatusLine accepts "HTTP/1.x NNN[ reason]".
func parseStatusLine(l []byte) (int, bool) {
	if len(l) < 12 || string(l[:7]) != "HTTP/1." || l[7] < '0' || l[7] > '9' || l[8] != ' ' {
		return 0, false
	}
	if len(l) > 12 && l[12] != ' ' {
		return 0, false
	}
	s := 0
	for _, c := range l[9:12] {
		if c < '0' || c > '9' {
			return 0, false
		}
		s = s*10 + int(c-'0')
	}
	if s < 100 {
		return 0, false
	}
	return s, true
}

func parseChunkSize(l []byte) (int64, bool) {
	if i := bytes.IndexByte(l, ';'); i >= 0 {
		l = l[:i]
	}
	l = bytes.TrimRight(l, " \t")
	if len(l) == 0 || len(l) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range l {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// header notes the framing headers of one header line.
func (r *respTracker) header(l []byte) {
	if l[0] == ' ' || l[0] == '\t' {
		r.bad = true // obsolete line folding: refuse to guess
		return
	}
	i := bytes.IndexByte(l, ':')
	if i <= 0 {
		r.bad = true
		return
	}
	name, val := l[:i], strings.Trim(string(l[i+1:]), " \t")
	if !ValidHeaderName(string(name)) {
		r.bad = true
		return
	}
	switch {
	case strings.EqualFold(string(name), "Content-Length"):
		for _, v := range strings.Split(val, ",") {
			v = strings.Trim(v, " \t")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || v[0] < '0' || v[0] > '9' || (r.clen >= 0 && n != r.clen) {
				r.bad = true
				return
			}
			r.clen = n
		}
	case strings.EqualFold(string(name), "Transfer-Encoding"):
		for _, v := range strings.Split(val, ",") {
			v = strings.Trim(v, " \t")
			if v == "" {
				continue
			}
			if r.chunked {
				// chunked must be the last coding; anything after it
				// means the body is delimited by the close.
				r.untilClose = true
			}
			r.chunked = strings.EqualFold(v, "chunked")
			if !r.chunked {
				r.untilClose = true
			}
		}
		if r.chunked {
			r.untilClose = false
		}
	}
}

// endHead applies RFC 9112 §6.3 once the head is complete.
func (r *respTracker) endHead() {
	if r.bad {
		r.lose()
		return
	}
	switch {
	case r.status == 101:
		if r.kind&reqUpgrade == 0 {
			r.lose() // a switch nobody asked for
			return
		}
		r.switchProtocols()
		return
	case r.status < 200:
		// 100 Continue, 103 Early Hints...: an interim response; the
		// final one follows.
		r.state, r.used = rsStatus, 0
		return
	case r.kind&reqConnect != 0 && r.status < 300 && r.clen < 0 && !r.chunked && !r.untilClose:
		// A 2xx to CONNECT switches to a tunnel only without
		// Content-Length and Transfer-Encoding (RFC 9110 §9.3.6): a
		// target that frames its answer as a message (a catch-all
		// handler answering 200 with a body) is still speaking HTTP, so
		// the client's next bytes must go on being parsed and rewritten.
		r.switchProtocols()
		return
	case r.kind&reqHead != 0 || r.status == 204 || r.status == 304:
		r.endResponse()
		return
	case r.chunked:
		r.state = rsChunkSize
	case r.untilClose || r.clen < 0:
		// The body ends with the connection: nothing after it can be
		// matched, so stop here.
		r.lose()
		return
	case r.clen == 0:
		r.endResponse()
		return
	default:
		r.state, r.remain = rsBody, r.clen
	}
	r.used = 0
}

func (r *respTracker) switchProtocols() {
	r.responses++
	r.x.pop(true)
	r.state = rsOpaque
	r.line = nil
	r.x.stop() // nothing more to track; the verdict stays "switched"
}

func (r *respTracker) endResponse() {
	r.responses++
	r.x.pop(false)
	r.state, r.used = rsStatus, 0
}
