//go:build race

package main

// raceEnabled reports a -race build (the soak judges RSS only without it).
const raceEnabled = true
