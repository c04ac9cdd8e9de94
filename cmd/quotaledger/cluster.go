package main

import (
	"fmt"
	"time"
)

// ClusterCmd shows the cluster the server is a node of (DESIGN §11).
type ClusterCmd struct {
	ClientFlags `embed:""`
	Status      ClusterStatusCmd `cmd:"" help:"Show every node of the cluster: name, role, applied log sequence, lag, last contact and digest (admins and readers)."`
}

// ClusterStatusCmd prints the cluster's status.
type ClusterStatusCmd struct{}

// Run prints the nodes as the server called sees them, the leader first.
func (cmd *ClusterStatusCmd) Run(e *cliEnv) error {
	cl, err := e.c.ClusterStatus(e.ctx)
	if err != nil {
		return err
	}
	return e.show(cl, func() error {
		tw := e.table("NAME", "ROLE", "APPLIED", "LAG", "LAST CONTACT", "DIGEST", "URL")
		for _, n := range cl.Nodes {
			ago := "-"
			if !n.LastContact.IsZero() {
				ago = fmt.Sprintf("%s ago", max(time.Since(n.LastContact.Time), 0).Round(100*time.Millisecond))
			}
			digest := n.Digest
			if n.DigestSeq != n.Applied && digest != "" {
				digest += fmt.Sprintf(" (at %d)", n.DigestSeq)
			}
			row(tw, n.Name, n.Role, n.Applied, n.Lag, ago, digest, n.HTTPURL)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		leader := cl.Leader
		if leader == "" {
			leader = "none"
		}
		_, err := fmt.Fprintf(e.stdout, "(answered by %s; leader: %s)\n", cl.Node, leader)
		return err
	})
}
