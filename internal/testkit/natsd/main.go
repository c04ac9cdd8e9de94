// Command natsd runs one embedded NATS server of a test cluster
// (events.StartServer) until SIGTERM or SIGINT. The cluster's tests run
// their NATS servers as processes of their own, built without the race
// detector: the servers' own internals are not what those tests check.
//
//	natsd -dir DIR -listen 127.0.0.1:4222 -name n1 -cluster test -route 127.0.0.1:6222 -peers 127.0.0.1:6223,127.0.0.1:6224
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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
	// The tests ask a server who leads JetStream's meta group (which only
	// the system account may ask NATS itself): natsd.meta.NAME answers
	// the server's view of it, as JSON (server.MetaClusterInfo).
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	if _, err := nc.Subscribe("natsd.meta."+*name, func(m *nats.Msg) {
		var meta *server.MetaClusterInfo
		if jsz, err := srv.NATS().Jsz(nil); err == nil {
			meta = jsz.Meta
		}
		b, _ := json.Marshal(meta)
		_ = m.Respond(b)
	}); err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	if err := nc.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	fmt.Println(srv.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	nc.Close()
	srv.Shutdown()
}
