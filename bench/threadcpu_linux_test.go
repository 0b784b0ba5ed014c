package bench

import (
	"syscall"
	"time"
	"unsafe"
)

// threadCPU returns the CPU time of the calling OS thread; the caller must
// be locked to its thread (runtime.LockOSThread). It uses
// clock_gettime(CLOCK_THREAD_CPUTIME_ID), which includes the time run since
// the thread was last scheduled in: getrusage(RUSAGE_THREAD) does not (it
// lags by up to a scheduler tick while the thread keeps running), which
// under-counts a handshake that ends with a computation, as the server's
// does (the key agreement after ClientKeyExchange).
func threadCPU() (time.Duration, bool) {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// processCPU is the CPU time of the whole process (every thread).
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
