package main

import (
	"os"
	"strconv"
	"strings"
)

// machineCPU is the machine's CPU time since boot from /proc/stat's first
// line, in clock ticks: busy (everything but idle and I/O wait) and total.
type machineCPU struct{ busy, total float64 }

// readMachineCPU reads the machine's CPU time; ok is false where there is
// no /proc/stat (other systems than Linux).
func readMachineCPU() (c machineCPU, ok bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return c, false
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return c, false
		}
		c.total += v
		if i != 3 && i != 4 { // idle, iowait
			c.busy += v
		}
	}
	return c, true
}

// benchCPUUse is what the machine's CPUs did between two readings: the
// busy share of their time (0 to 1) and the busy time in seconds, at the
// kernel's usual 100 ticks a second. ok is false if either reading
// failed or no time passed.
func benchCPUUse(before, after machineCPU, okBefore, okAfter bool) (share, seconds float64, ok bool) {
	total := after.total - before.total
	if !okBefore || !okAfter || total <= 0 {
		return 0, 0, false
	}
	busy := after.busy - before.busy
	return busy / total, busy / 100, true
}
