//go:build !unix

package grpccreds_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
