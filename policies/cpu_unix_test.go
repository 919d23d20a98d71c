//go:build unix

package policies

import "syscall"

// processCPU is the CPU time, user and system, in seconds, that the test
// process has used so far; 0 if it cannot be read.
func processCPU() float64 {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}
