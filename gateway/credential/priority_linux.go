package credential

import "syscall"

// lowerThreadPriority sets the calling OS thread's nice value. Linux
// applies setpriority to one thread when given its thread ID. Raising a
// nice value needs no privilege; should it fail anyway the hash runs at
// the normal priority, which is correct, only less kind to proxying.
func lowerThreadPriority(nice int) {
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice)
}

// threadNice returns the calling thread's nice value, for tests.
func threadNice() (int, error) {
	// The raw system call returns 20 - nice, so that it is never negative.
	p, _, errno := syscall.Syscall(syscall.SYS_GETPRIORITY, syscall.PRIO_PROCESS, uintptr(syscall.Gettid()), 0)
	if errno != 0 {
		return 0, errno
	}
	return 20 - int(p), nil
}
