//go:build unix

package loadgen

import "syscall"

// generatorCPU is this process's user and system CPU in seconds, -1 when
// getrusage fails.
func generatorCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
