// Command pause holds a pod's namespaces for the test bed's node: it waits for SIGTERM or SIGINT
// and exits.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
