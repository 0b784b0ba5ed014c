#!/bin/sh
# Prints the ratios mtls/stunnel of `go test -bench=Proxy` output (file
# argument or stdin): for each benchmark and metric that the stunnel pair
# reports (handshakes/s, MB/s, KB/conn-client, KB/conn-server), each mtls
# pair's value divided by stunnel's. Higher is better except for the KB
# metrics (memory), where the line also says how many times less.
# With several runs of one benchmark (-count), the medians are compared.
awk '
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)          # the GOMAXPROCS suffix
	n = split(name, part, "/")
	if (n < 2) next
	bench = part[1]; pair = part[2]
	for (i = 3; i < NF; i++) {
		unit = $(i + 1)
		if (unit == "handshakes/s" || unit == "MB/s" || unit ~ /^KB\/conn-/ || unit ~ /syscalls\/conn-/) {
			key = bench SUBSEP unit SUBSEP pair
			cnt[key]++
			val[key, cnt[key]] = $i + 0
			if (!(bench SUBSEP unit in seenbu)) { seenbu[bench SUBSEP unit] = 1; order[++nbu] = bench SUBSEP unit }
			if (!(bench SUBSEP unit SUBSEP pair in seenp)) { seenp[bench SUBSEP unit SUBSEP pair] = 1; pairs[bench SUBSEP unit] = pairs[bench SUBSEP unit] " " pair }
		}
	}
}
function median(key,    k, i, j, t, a) {
	k = cnt[key]
	for (i = 1; i <= k; i++) a[i] = val[key, i]
	for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	if (k % 2) return a[(k + 1) / 2]
	return (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	printed = 0
	for (o = 1; o <= nbu; o++) {
		split(order[o], bu, SUBSEP)
		skey = order[o] SUBSEP "stunnel"
		if (!(skey in cnt)) continue
		s = median(skey)
		if (!printed) { print ""; print "ratios mtls/stunnel (median of the runs):"; printed = 1 }
		np = split(pairs[order[o]], pl, " ")
		for (p = 1; p <= np; p++) {
			if (pl[p] == "stunnel") continue
			m = median(order[o] SUBSEP pl[p])
			if (s == 0) { printf "  %-26s %-22s %10.2f vs stunnel %10.2f\n", bu[1], pl[p], m, s; continue }
			if (bu[2] ~ /^KB|syscalls/) {
				less = (m > 0) ? sprintf("  (%.2fx less)", s / m) : ""
				printf "  %-26s %-22s %-15s %10.2f vs %10.2f  ratio %.2f%s\n", bu[1], pl[p], bu[2], m, s, m / s, less
			} else
				printf "  %-26s %-22s %-15s %10.2f vs %10.2f  ratio %.2f\n", bu[1], pl[p], bu[2], m, s, m / s
		}
	}
	if (!printed) print "ratios mtls/stunnel: no stunnel results to compare with"
}
' "$@"
