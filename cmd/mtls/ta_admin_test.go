package main

import "testing"

func TestHumanDays(t *testing.T) {
	for in, want := range map[string]string{
		"days [20000 20001]":                             "days 2024-10-04 2024-10-05",
		"code x; issued client share, days 20000..20001": "code x; issued client share, days 2024-10-04..2024-10-05",
		"days 2026-12-06":                                "days 2026-12-06",
		"new renewal secret k0123.dta.invalid":           "new renewal secret k0123.dta.invalid",
	} {
		if got := humanDays(in); got != want {
			t.Errorf("humanDays(%q) = %q, want %q", in, got, want)
		}
	}
}
