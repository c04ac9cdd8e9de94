// Command natsd runs one embedded NATS server of a test cluster
// (events.StartServer) until SIGTERM or SIGINT. The cluster's tests run
// their NATS servers as processes of their own, built without the race
// detector: the servers' own internals are not what those tests check.
//
//	natsd -dir DIR -listen 127.0.0.1:4222 -name n1 -cluster test -route 127.0.0.1:6222 -peers 127.0.0.1:6223,127.0.0.1:6224
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/events"
)

func main() {
	dir := flag.String("dir", "", "the JetStream store")
	listen := flag.String("listen", "127.0.0.1:-1", "the client address")
	name := flag.String("name", "", "the server's name in the cluster")
	cluster := flag.String("cluster", "test", "the cluster's name")
	route := flag.String("route", "", "the route address")
	peers := flag.String("peers", "", "the other servers' route addresses, comma-separated")
	flag.Parse()
	var routes []string
	if *peers != "" {
		routes = strings.Split(*peers, ",")
	}
	srv, err := events.StartServer(events.ServerOptions{Dir: *dir, Listen: *listen, SyncAlways: true,
		Logger:  zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
		Cluster: events.ClusterOptions{Name: *cluster, ServerName: *name, Listen: *route, Routes: routes}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	fmt.Println(srv.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	srv.Shutdown()
}
