//go:build !unix

package loadgen

// generatorCPU is not measured on this platform.
func generatorCPU() float64 { return -1 }
