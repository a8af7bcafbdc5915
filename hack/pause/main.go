// Command pause is the local node's pod sandbox image (registry.k8s.io/pause cannot be pulled
// here): it holds the pod's namespaces open and exits on SIGINT or SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
}
