//go:build !linux

package credential

import "errors"

// lowerThreadPriority does nothing where the priority of one thread cannot
// be set: hashes then run at the process's priority.
func lowerThreadPriority(int) {}

func threadNice() (int, error) { return 0, errors.New("thread priorities are not supported here") }
