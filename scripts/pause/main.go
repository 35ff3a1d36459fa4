// The sandbox's pause image: the process that holds a pod's sandbox, like registry.k8s.io/pause. It waits for
// SIGINT or SIGTERM and exits 0, reaping children meanwhile (it may be PID 1 of a pod's PID namespace).
// Built static by scripts/servers.sh, so its image needs no libc.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s == syscall.SIGCHLD {
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
