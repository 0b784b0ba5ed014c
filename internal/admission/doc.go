// Package admission is the one home of this module's admission and abuse
// control: what a server decides about a connection or a hello before it
// spends work on it, and what it remembers about who failed.
//
//   - Source keys (Keyer): who a peer is for every guard below. An IPv4
//     peer is its address; an IPv6 peer is its /64 (the prefix length is
//     configurable), because one host commonly owns a whole /64.
//   - Handshake slots (Slots): connections that have not finished their
//     handshake are bounded in all, and shared fairly between sources:
//     when every slot is taken, a new source takes one from the source
//     holding the most (its oldest connection is closed).
//   - Failure budgets (Budget): a token bucket of refusals per source.
//     Every refusal of a source (a failed proof, a replay, a hello refused
//     by a lockout) spends it; a source that spent it is refused at accept.
//   - Pairing gate (Gate): bounds concurrent expensive work, serving
//     sources round-robin and sources with an untouched budget first.
//   - Lockout: failed proofs counted per identity and source, with a much
//     higher identity-wide threshold, a backoff that one burst escalates
//     at most once, and a table that never forgets a locked identity.
//   - Replay cache (Replay): a hello is reserved atomically before its
//     pairing and remembered whatever its outcome.
//   - Tarpit (Pit): refused connections are held open for a while rather
//     than closed, sized per source, so a flooder loses its concurrency
//     instead of reconnecting at once.
//
// Every component reads time from one injectable Clock, so a Guards value
// and its tests share one notion of now.
package admission
